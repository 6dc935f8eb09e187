//! [`StringList`]: many short strings in one buffer (the merges of a BPE vocabulary, the string arrays of a GGUF
//! header), so that a list of a few hundred thousand costs two allocations instead of one per string.

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

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
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
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.ends.iter().scan(0, |start, &end| {
            let s = self.text.get(*start..end).unwrap_or_default();
            *start = end;
            Some(s)
        })
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
}
