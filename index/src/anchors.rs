//! The canonical anchor list: token strings whose embedding rows every fingerprint samples.
//!
//! Anchors are *strings*, not ids. Ingest resolves each one in a model's own vocabulary through that
//! vocabulary's spelling convention (WordPiece, SentencePiece `▁`, byte-level BPE `Ġ` and byte alphabet), and
//! records which resolved in a presence mask. Two fingerprints compare on the anchors present in both, so
//! models with different tokenizers stay comparable, and a vocabulary extension (CodeLlama over Llama-2) keeps
//! every shared anchor in place.
//!
//! The list covers punctuation and digits, frequent English words, code, and frequent words of several other
//! scripts and languages. Changing it changes the fingerprint definition: bump [`ANCHOR_SET_VERSION`] and
//! [`crate::schema::FINGERPRINT_VERSION`].

/// Version of [`ANCHORS`].
pub const ANCHOR_SET_VERSION: u32 = 1;

/// The anchors, in their fixed order.
pub const ANCHORS: &[&str] = &[
    // Digits and punctuation (16, the reference's list).
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", ",", "!", "?", ":", ";",
    // Frequent English words and suffixes (the reference's 24).
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "was", "on", "are", "with", "as", "be", "at", "ing",
    "tion", "er", "al", "ed", "es", "re", "en",
    // More frequent English words (48).
    "a", "I", "you", "he", "she", "we", "they", "this", "not", "but", "have", "from", "or", "by", "one", "all",
    "were", "there", "what", "when", "can", "an", "which", "their", "if", "do", "will", "each", "about", "how",
    "up", "out", "them", "then", "many", "some", "so", "these", "would", "other", "into", "has", "more", "time",
    "two", "like", "no", "people",
    // Content words across topics (16).
    "water", "house", "world", "school", "family", "music", "science", "money", "king", "city", "government",
    "computer", "language", "children", "history", "love",
    // Code (24).
    "def", "return", "import", "class", "self", "function", "var", "else", "const", "while", "int", "string",
    "true", "false", "null", "print", "(", ")", "{", "}", "[", "]", "=", "==",
    // Symbols (8).
    "-", "+", "*", "/", "\"", "'", "#", "@",
    // Chinese (12, the reference's list) and Japanese kana (8).
    "的", "一", "是", "不", "人", "我", "在", "有", "了", "这", "中", "大", "の", "に", "は", "を", "た", "が", "で",
    "と",
    // Korean (6).
    "이", "는", "다", "에", "의", "하",
    // Cyrillic (8, the reference's list) and more Russian (4).
    "и", "в", "не", "на", "я", "что", "он", "к", "с", "по", "это", "как",
    // Arabic (8) and Devanagari (8), the reference's lists.
    "من", "في", "على", "أن", "هذا", "الله", "إلى", "لا", "के", "है", "का", "की", "यह", "से", "को", "पर",
    // Spanish, French, German, Italian, Portuguese (20).
    "de", "la", "que", "el", "los", "las", "le", "les", "et", "une", "est", "und", "der", "die", "das", "ist",
    "nicht", "il", "di", "não",
    // Greek (4).
    "και", "το", "να", "της",
];

/// Number of 64-bit words in a presence mask over [`ANCHORS`].
pub fn presence_words() -> usize {
    ANCHORS.len().div_ceil(64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn anchors_are_distinct() {
        let mut seen = HashSet::new();
        for a in ANCHORS {
            assert!(seen.insert(*a), "duplicate anchor {a:?}");
        }
        assert!((128..=256).contains(&ANCHORS.len()), "{} anchors", ANCHORS.len());
    }
}
