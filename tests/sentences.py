"""Sentences in many languages and scripts, shared by the encoder and me5 tests."""
# Sentences in 13 languages and 9 scripts (Latin, Cyrillic, Greek, Arabic, Devanagari, Han, Kana, Hangul, Thai).
SENTS = {
    'en': "The committee approved the new budget on Tuesday.",
    'de': "Die Straßenbahn fährt heute nicht über den Fluss.",
    'fr': "L'été dernier, nous sommes allés à la mer.",
    'tr': "Yarın İstanbul'a gideceğim, çünkü toplantı var.",
    'ru': "Сегодня вечером мы пойдём в театр.",
    'el': "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    'ar': "ذهبت إلى السوق واشتريت بعض الفواكه.",
    'hi': "मुझे हिंदी में किताबें पढ़ना पसंद है।",
    'zh': "我们明天早上去北京参观博物馆。",
    'ja': "東京の天気は今日とても良いです。",
    'ko': "저는 매일 아침 커피를 마십니다.",
    'th': "ฉันชอบกินอาหารไทยมาก",
    'sw': "Watoto wanacheza mpira uwanjani.",
}
TEXTS = list(SENTS.values())
