//! [`StringList`]: many short strings in one buffer (the merges of a BPE vocabulary, the string arrays of a GGUF
//! header), so that a list of a few hundred thousand costs two allocations instead of one per string.
//! [`TokenList`]: the (token, id) pairs of a vocabulary, the strings in a [`StringList`].

use std::fmt;

/// A list of strings stored end to end in one buffer, with where each one ends.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StringList {
    text: String,
    ends: Vec<usize>,
}

impl StringList {
    /// An empty list.
    pub fn new() -> StringList {
        StringList::default()
    }

    /// An empty list with room for `count` strings.
    pub fn with_capacity(count: usize) -> StringList {
        StringList {
            text: String::new(),
            ends: Vec::with_capacity(count),
        }
    }

    /// From the strings end to end and where each ends. The parts come back unless the ends are
    /// non-decreasing, lie on character boundaries and the last one is the end of `text`.
    pub(crate) fn from_parts(
        text: String,
        ends: Vec<usize>,
    ) -> Result<StringList, (String, Vec<usize>)> {
        let mut start = 0;
        for &end in &ends {
            if end < start || !text.is_char_boundary(end) {
                return Err((text, ends));
            }
            start = end;
        }
        if start != text.len() {
            return Err((text, ends));
        }
        Ok(StringList { text, ends })
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Keep the first `count` strings.
    fn truncate(&mut self, count: usize) {
        if count < self.ends.len() {
            self.text
                .truncate(count.checked_sub(1).map_or(0, |last| self.ends[last]));
            self.ends.truncate(count);
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All the strings end to end.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => *self.ends.get(i - 1)?,
        };
        self.text.get(start..end)
    }

    /// The strings in order.
    pub fn iter(&self) -> StringIter<'_> {
        StringIter {
            text: &self.text,
            ends: self.ends.iter(),
            start: 0,
        }
    }

    /// Append a string.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Append the concatenation of `parts` as one string.
    pub fn push_concat(&mut self, parts: &[&str]) {
        for p in parts {
            self.text.push_str(p);
        }
        self.ends.push(self.text.len());
    }

    /// Append bytes as a string, invalid UTF-8 replaced by U+FFFD.
    pub fn push_lossy(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.push(s),
            Err(_) => self.push(&String::from_utf8_lossy(bytes)),
        }
    }

    /// The first `count` strings (all of them when there are fewer) joined with `sep`.
    pub fn join_first(&self, count: usize, sep: &str) -> String {
        let count = count.min(self.len());
        let bytes = self.ends.get(count.wrapping_sub(1)).copied().unwrap_or(0);
        let mut out = String::with_capacity(bytes + count.saturating_sub(1) * sep.len());
        for (i, s) in self.iter().take(count).enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(s);
        }
        out
    }

    /// Every string joined with `sep`.
    pub fn join(&self, sep: &str) -> String {
        self.join_first(self.len(), sep)
    }
}

impl fmt::Debug for StringList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::ops::Index<usize> for StringList {
    type Output = str;

    /// String `i`; panics when `i` is out of range, as a `Vec` does.
    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(s) => s,
            None => panic!(
                "index {i} out of range for a list of {} strings",
                self.len()
            ),
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for StringList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> StringList {
        let mut list = StringList::default();
        for s in iter {
            list.push(s.as_ref());
        }
        list
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for StringList {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for StringList {
    fn eq(&self, other: &[S; N]) -> bool {
        self == &other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for StringList {
    fn eq(&self, other: &Vec<S>) -> bool {
        self == &other[..]
    }
}

/// The (token, id) pairs of a vocabulary: the strings end to end in one [`StringList`] and the ids beside them.
///
/// A vocabulary holds up to a few hundred thousand tokens; one `String` each cost an allocation per token to
/// build and a free per token to drop, which was most of the time of building a vocabulary from a GGUF header
/// (whose token array is already one buffer, cloned here in one piece).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenList {
    strings: StringList,
    ids: Vec<u32>,
}

impl TokenList {
    /// An empty list.
    pub fn new() -> TokenList {
        TokenList::default()
    }

    /// The strings with their ids; `None` when the counts differ.
    pub fn from_parts(strings: StringList, ids: Vec<u32>) -> Option<TokenList> {
        (strings.len() == ids.len()).then_some(TokenList { strings, ids })
    }

    /// Number of (token, id) pairs.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Pair `i`.
    pub fn get(&self, i: usize) -> Option<(&str, u32)> {
        Some((self.strings.get(i)?, *self.ids.get(i)?))
    }

    /// The last pair.
    pub fn last(&self) -> Option<(&str, u32)> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The token strings, in order.
    pub fn strings(&self) -> &StringList {
        &self.strings
    }

    /// The ids, in order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The pairs in order. The id comes by reference, as it did from the `Vec<(String, u32)>` this replaced, so
    /// that `|(token, id)| *id` reads the same.
    pub fn iter(&self) -> std::iter::Zip<StringIter<'_>, std::slice::Iter<'_, u32>> {
        self.strings.iter().zip(&self.ids)
    }

    /// Append a pair.
    pub fn push(&mut self, token: &str, id: u32) {
        self.strings.push(token);
        self.ids.push(id);
    }

    /// Keep the first `count` pairs.
    fn truncate(&mut self, count: usize) {
        self.strings.truncate(count);
        self.ids.truncate(count);
    }

    /// Sort by (id, token bytes) and drop exact duplicate pairs. A list already in that order (as most
    /// tokenizer files and every GGUF header give it) is only checked.
    pub fn sort_dedup(&mut self) {
        // Length of the strictly ordered prefix.
        let prefix = (1..self.len())
            .find(|&i| !self.pair_order(i - 1, i).is_lt())
            .unwrap_or(self.len());
        if prefix == self.len() {
            return;
        }
        // The same tail when each of its pairs is already in the ordered prefix (a tokenizer.json's added
        // tokens usually repeat vocabulary entries): it is dropped, and nothing is rebuilt.
        // The prefix is ordered by id first, so a pair is found among the prefix entries with its id.
        let ids = &self.ids[..prefix];
        let in_prefix = |i: usize| {
            let id = self.ids[i];
            let same_id = ids.partition_point(|&x| x < id)..ids.partition_point(|&x| x <= id);
            same_id
                .into_iter()
                .any(|p| self.strings.get(p) == self.strings.get(i))
        };
        if (prefix..self.len()).all(in_prefix) {
            self.truncate(prefix);
            return;
        }
        let mut order: Vec<usize> = if self.len() - prefix <= self.len() / 8 {
            // An ordered vocabulary with a short unordered tail (tokenizer.json files list their added
            // tokens after the vocabulary, ids 0.. again): sort the tail and merge it in.
            let mut tail: Vec<usize> = (prefix..self.len()).collect();
            tail.sort_unstable_by(|&a, &b| self.pair_order(a, b));
            let mut merged = Vec::with_capacity(self.len());
            let mut tail = tail.into_iter().peekable();
            for head in 0..prefix {
                while let Some(&t) = tail.peek() {
                    if self.pair_order(t, head).is_lt() {
                        merged.push(t);
                        tail.next();
                    } else {
                        break;
                    }
                }
                merged.push(head);
            }
            merged.extend(tail);
            merged
        } else {
            let mut all: Vec<usize> = (0..self.len()).collect();
            all.sort_unstable_by(|&a, &b| self.pair_order(a, b));
            all
        };
        order.dedup_by(|b, a| self.pair_order(*a, *b).is_eq());
        let mut sorted = TokenList {
            strings: StringList::with_capacity(order.len()),
            ids: Vec::with_capacity(order.len()),
        };
        for i in order {
            if let Some((token, id)) = self.get(i) {
                sorted.push(token, id);
            }
        }
        *self = sorted;
    }

    /// The (id, token) order of pairs `a` and `b`.
    fn pair_order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        // The strings only when the ids tie (the rare case): the check of an ordered list reads ids alone.
        self.ids
            .get(a)
            .cmp(&self.ids.get(b))
            .then_with(|| self.strings.get(a).cmp(&self.strings.get(b)))
    }
}

impl fmt::Debug for TokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a TokenList {
    type Item = (&'a str, &'a u32);
    type IntoIter = std::iter::Zip<StringIter<'a>, std::slice::Iter<'a, u32>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The strings of a [`StringList`] in order ([`StringList::iter`]).
pub struct StringIter<'a> {
    text: &'a str,
    ends: std::slice::Iter<'a, usize>,
    start: usize,
}

impl<'a> Iterator for StringIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = *self.ends.next()?;
        // The ends were checked to be non-decreasing character boundaries when the list was built.
        let s = self.text.get(self.start..end).unwrap_or_default();
        self.start = end;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for StringIter<'_> {}

impl<S: AsRef<str>> FromIterator<(S, u32)> for TokenList {
    fn from_iter<I: IntoIterator<Item = (S, u32)>>(iter: I) -> TokenList {
        let mut list = TokenList::default();
        list.extend(iter);
        list
    }
}

impl<S: AsRef<str>> Extend<(S, u32)> for TokenList {
    fn extend<I: IntoIterator<Item = (S, u32)>>(&mut self, iter: I) {
        for (token, id) in iter {
            self.push(token.as_ref(), id);
        }
    }
}

impl From<Vec<(String, u32)>> for TokenList {
    fn from(pairs: Vec<(String, u32)>) -> TokenList {
        pairs.into_iter().collect()
    }
}

impl<S: AsRef<str>> PartialEq<[(S, u32)]> for TokenList {
    fn eq(&self, other: &[(S, u32)]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((a, i), (b, j))| a == b.as_ref() && i == j)
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[(S, u32); N]> for TokenList {
    fn eq(&self, other: &[(S, u32); N]) -> bool {
        self == &other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<(S, u32)>> for TokenList {
    fn eq(&self, other: &Vec<(S, u32)>) -> bool {
        self == &other[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_end_to_end() {
        let mut l: StringList = ["a b", "", "Ġ é"].into_iter().collect();
        l.push_concat(&["x", " ", "y"]);
        assert_eq!(l.len(), 4);
        assert_eq!(l, ["a b", "", "Ġ é", "x y"]);
        assert_eq!((l.get(2), l.get(4)), (Some("Ġ é"), None));
        assert_eq!(&l[3], "x y");
        assert_eq!(l.join("\n"), "a b\n\nĠ é\nx y");
        assert_eq!(l.join_first(2, "\n"), "a b\n");
        assert_eq!(l.join_first(0, "\n"), "");
        assert_eq!(l.join_first(99, ","), "a b,,Ġ é,x y");
        assert_eq!(format!("{l:?}"), r#"["a b", "", "Ġ é", "x y"]"#);
        l.push_lossy(b"\xffok");
        assert_eq!(&l[4], "\u{fffd}ok");
        assert!(StringList::new().is_empty());
        assert_eq!(StringList::new().join(","), "");
        assert_eq!(
            StringList::from_parts("ab".into(), vec![1, 2]).unwrap(),
            ["a", "b"]
        );
        assert!(StringList::from_parts("ab".into(), vec![2, 1]).is_err());
        assert!(StringList::from_parts("ab".into(), vec![1]).is_err());
        assert!(StringList::from_parts("é".into(), vec![1, 2]).is_err());
    }

    #[test]
    fn token_lists_sort_like_pairs() {
        let pairs = [("b", 2), ("a", 2), ("é", 0), ("a", 2), ("", 7), ("z", 1)];
        let mut l: TokenList = pairs.into_iter().collect();
        assert_eq!(l.len(), 6);
        assert_eq!(l.get(2), Some(("é", 0)));
        let mut want: Vec<(String, u32)> = pairs.iter().map(|&(t, i)| (t.to_string(), i)).collect();
        want.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        want.dedup();
        l.sort_dedup();
        assert_eq!(l, want);
        assert_eq!(l.last(), Some(("", 7)));
        assert_eq!(l.strings().text(), "ézab");
        assert_eq!(l.ids(), [0, 1, 2, 2, 7]);
        let pairs: Vec<(&str, u32)> = (&l).into_iter().map(|(t, i)| (t, *i)).collect();
        assert_eq!(pairs, [("é", 0), ("z", 1), ("a", 2), ("b", 2), ("", 7)]);
        assert_eq!(
            format!("{l:?}"),
            r#"[("é", 0), ("z", 1), ("a", 2), ("b", 2), ("", 7)]"#
        );
        let sorted = l.clone();
        l.sort_dedup();
        assert_eq!(l, sorted);
        assert!(TokenList::from_parts(StringList::new(), vec![1]).is_none());
        assert!(TokenList::new().is_empty() && TokenList::new().last().is_none());
    }

    /// An ordered list with a short unordered tail (merged in) and a fully unordered one (sorted) both come
    /// out as a plain sort and dedup of the pairs would give.
    #[test]
    fn short_unordered_tails_are_merged_like_a_full_sort() {
        let mut x = 12345u64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for case in 0..200 {
            let n = 1 + next(300) as usize;
            let tail = if case % 4 == 0 {
                n
            } else {
                next(n as u64 / 8 + 1) as usize
            };
            let mut pairs: Vec<(String, u32)> = (0..n - tail)
                .map(|i| (format!("t{}", next(5)), 2 * i as u32))
                .collect();
            pairs.dedup_by(|b, a| a.1 == b.1);
            for _ in 0..tail {
                pairs.push((format!("t{}", next(5)), next(2 * n as u64 + 2) as u32));
            }
            let mut l: TokenList = pairs.iter().map(|(t, i)| (t.as_str(), *i)).collect();
            let mut want = pairs.clone();
            want.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            want.dedup();
            l.sort_dedup();
            assert_eq!(l, want, "case {case}");
        }
    }

    /// A tail that only repeats pairs of the ordered prefix (a tokenizer.json's added tokens) is dropped; one
    /// new pair among the repeats is merged in.
    #[test]
    fn tails_of_repeated_pairs_are_dropped() {
        let prefix: Vec<(String, u32)> = (0..50).map(|i| (format!("t{}", i % 7), i / 2)).collect();
        for (tail, extra) in [
            (vec![3usize, 0, 49, 3], None),
            (vec![10, 20], Some(("t9", 7))),
        ] {
            let mut pairs = prefix.clone();
            pairs.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            pairs.dedup();
            let ordered = pairs.clone();
            pairs.extend(tail.iter().map(|&i| ordered[i].clone()));
            pairs.extend(extra.map(|(t, i)| (t.to_string(), i)));
            let mut l: TokenList = pairs.iter().map(|(t, i)| (t.as_str(), *i)).collect();
            l.sort_dedup();
            let mut want = pairs.clone();
            want.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            want.dedup();
            assert_eq!(l, want);
            assert_eq!(l.len(), ordered.len() + extra.iter().count());
            assert_eq!(
                l.strings().text().len(),
                want.iter().map(|p| p.0.len()).sum::<usize>()
            );
        }
    }
}
