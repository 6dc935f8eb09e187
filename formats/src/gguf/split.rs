//! Models split into several GGUF files by llama.cpp's `gguf-split`.
//!
//! The parts are named `<prefix>-00001-of-00003.gguf` (llama.cpp's `llama_split_path`, numbered from 1).
//! Every part is a complete GGUF file holding some of the tensors and the keys `split.no` (u16, from 0),
//! `split.count` (u16) and `split.tensors.count` (i32, the tensors of the whole model). Only the first part
//! holds the model's metadata (architecture, hyperparameters, tokenizer). `gguf-split --merge` writes
//! `split.count = 0`, so a count of 0 or 1 means "not split".

use super::GgufHeader;
use std::path::{Path, PathBuf};

/// `split.no`.
pub const KEY_NO: &str = "split.no";
/// `split.count`.
pub const KEY_COUNT: &str = "split.count";
/// `split.tensors.count`.
pub const KEY_TENSORS: &str = "split.tensors.count";

/// A part's `split.*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitInfo {
    /// `split.no`: this part's index, from 0.
    pub no: u64,
    /// `split.count`: the number of parts (at least 2).
    pub count: u64,
    /// `split.tensors.count`: the tensors of the whole model, when recorded.
    pub tensors: Option<u64>,
}

impl GgufHeader {
    /// The `split.*` keys of a part of a split model; `None` for a file that is not split (no `split.count`,
    /// or a count below 2).
    pub fn split(&self) -> Option<SplitInfo> {
        let get = |k: &str| self.get(k).and_then(|v| v.as_u64());
        let count = get(KEY_COUNT).filter(|&c| c > 1)?;
        Some(SplitInfo {
            no: get(KEY_NO).unwrap_or(0),
            count,
            tensors: get(KEY_TENSORS),
        })
    }
}

/// A file name in gguf-split's pattern: `<prefix>-<number>-of-<count>.gguf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    /// Everything before `-00001-of-00003.gguf`.
    pub prefix: String,
    /// The part's number, from 1.
    pub number: u64,
    /// The number of parts.
    pub count: u64,
}

/// Most parts a model can be split into: `split.count` is a u16.
pub const MAX_PARTS: u64 = u16::MAX as u64;

impl SplitName {
    /// Parse a file name. `None` unless it follows the pattern with `1 <= number <= count` and
    /// `2 <= count <=` [`MAX_PARTS`] (so that a name cannot ask for millions of parts). A `/`-separated
    /// relative path parses too: its directories stay in the prefix, and so in every part's name.
    pub fn parse(file_name: &str) -> Option<SplitName> {
        let stem = file_name
            .len()
            .checked_sub(5)
            .filter(|&i| file_name.is_char_boundary(i))
            .filter(|&i| file_name[i..].eq_ignore_ascii_case(".gguf"))
            .map(|i| &file_name[..i])?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (prefix, number) = rest.rsplit_once('-')?;
        let digits = |s: &str| -> Option<u64> {
            (s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (number, count) = (digits(number)?, digits(count)?);
        let valid = !prefix.is_empty()
            && !prefix.ends_with('/')
            && (2..=MAX_PARTS).contains(&count)
            && (1..=count).contains(&number);
        valid.then(|| SplitName {
            prefix: prefix.to_string(),
            number,
            count,
        })
    }

    /// The file name of part `number` (from 1) of the same model.
    pub fn part_name(&self, number: u64) -> String {
        part_file_name(&self.prefix, number, self.count)
    }

    /// The names of every part, in order.
    pub fn part_names(&self) -> Vec<String> {
        (1..=self.count).map(|n| self.part_name(n)).collect()
    }

    /// The paths of every part, in order, in directory `dir`.
    pub fn part_paths(&self, dir: &Path) -> Vec<PathBuf> {
        (1..=self.count)
            .map(|n| dir.join(self.part_name(n)))
            .collect()
    }

    /// The first part's file name without `.gguf` (`model-00001-of-00003`): a name for the model that no other
    /// split model with the same prefix shares.
    pub fn first_stem(&self) -> String {
        format!("{}-{:05}-of-{:05}", self.prefix, 1, self.count)
    }
}

/// llama.cpp's part file name: `<prefix>-<number:05>-of-<count:05>.gguf`, `number` from 1.
pub fn part_file_name(prefix: &str, number: u64, count: u64) -> String {
    format!("{prefix}-{number:05}-of-{count:05}.gguf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = SplitName::parse("Qwen3-8B-Q4_K_M-00002-of-00003.gguf").unwrap();
        assert_eq!(
            (n.prefix.as_str(), n.number, n.count),
            ("Qwen3-8B-Q4_K_M", 2, 3)
        );
        assert_eq!(n.part_name(1), "Qwen3-8B-Q4_K_M-00001-of-00003.gguf");
        assert_eq!(
            n.part_paths(Path::new("d")),
            [1, 2, 3]
                .map(|i| Path::new("d").join(format!("Qwen3-8B-Q4_K_M-0000{i}-of-00003.gguf")))
        );
        assert!(SplitName::parse("model-00001-of-00001.gguf").is_none());
        assert!(SplitName::parse("model-00004-of-00003.gguf").is_none());
        assert!(SplitName::parse("model-1-of-3.gguf").is_none());
        assert!(SplitName::parse("model-00001-of-00003.safetensors").is_none());
        assert!(SplitName::parse("-00001-of-00003.gguf").is_none());
        assert!(SplitName::parse("model.gguf").is_none());
        assert!(SplitName::parse("é.gguf").is_none());
        assert!(SplitName::parse("model-00001-of-65536.gguf").is_none());
        assert_eq!(
            SplitName::parse("model-00001-of-65535.gguf").map(|n| n.count),
            Some(MAX_PARTS)
        );
        assert!(SplitName::parse("model-00001-of-99999999999999999999999.gguf").is_none());
        assert_eq!(n.first_stem(), "Qwen3-8B-Q4_K_M-00001-of-00003");
        // Paths inside a repository keep their directory in every part's name.
        let p = SplitName::parse("Q4_K_M/m-00002-of-00002.GGUF").unwrap();
        assert_eq!(
            p.part_names(),
            [
                "Q4_K_M/m-00001-of-00002.gguf",
                "Q4_K_M/m-00002-of-00002.gguf"
            ]
        );
        assert!(SplitName::parse("dir/-00001-of-00002.gguf").is_none());
    }
}
