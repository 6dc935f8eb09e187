//! README.md model cards: the YAML front matter fields provsearch reports (base_model, license, tags).
//!
//! A deliberately tiny reader, not a YAML parser: it understands the top-level `key: value` lines of the front
//! matter, scalars (plain, single- or double-quoted, with trailing `# comments`), block lists (`- x` lines)
//! and flow lists (`[a, b]`, also across lines). It never fails and never panics: a card without front
//! matter, or with front matter it cannot follow, yields empty fields. A card is the author's claim, so these
//! fields only annotate; they are never evidence.

/// Facts from a model card's front matter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCard {
    /// `base_model:` (a string or a list).
    pub base_models: Vec<String>,
    /// `license:`.
    pub license: Option<String>,
    /// `tags:` (a list, block or flow style).
    pub tags: Vec<String>,
}

/// Parse the front matter (between the leading `---` lines) of a README.
pub fn parse_model_card(text: &str) -> ModelCard {
    let mut card = ModelCard::default();
    let Some(lines) = front_matter(text) else {
        return card;
    };
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        i += 1;
        let Some((key, rest)) = top_level_key(line) else {
            continue;
        };
        let field = match key.as_str() {
            "base_model" => Field::BaseModel,
            "license" => Field::License,
            "tags" => Field::Tags,
            _ => continue,
        };
        let rest = strip_comment(rest).trim();
        let values = if rest.is_empty() {
            // Block list: the following `- item` lines (indented or not) up to the next key.
            let mut items = Vec::new();
            while let Some(next) = lines.get(i) {
                let t = next.trim();
                if t.is_empty() || t.starts_with('#') {
                    i += 1;
                    continue;
                }
                let Some(item) = t
                    .strip_prefix('-')
                    .filter(|r| r.is_empty() || r.starts_with([' ', '\t']))
                else {
                    break;
                };
                i += 1;
                let item = strip_comment(item).trim();
                if !looks_like_mapping(item) {
                    items.extend(scalar(item));
                }
            }
            items
        } else if rest.starts_with('[') {
            // Flow list, possibly continued on the following lines until `]`.
            let mut flow = rest.to_string();
            let mut state = FlowState::default();
            state.feed(rest);
            while !state.closed() {
                let Some(next) = lines.get(i) else {
                    break;
                };
                if top_level_key(next).is_some() {
                    break;
                }
                i += 1;
                let part = strip_comment(next).trim();
                state.feed(part);
                flow.push(' ');
                flow.push_str(part);
            }
            flow_list(&flow)
        } else if rest.starts_with(['|', '>', '{', '&', '*', '!']) {
            Vec::new() // block scalars, mappings, anchors, tags: beyond this reader
        } else {
            scalar(rest).into_iter().collect()
        };
        match field {
            Field::BaseModel => card.base_models = values,
            Field::License => card.license = values.into_iter().next(),
            Field::Tags => card.tags = values,
        }
    }
    card
}

enum Field {
    BaseModel,
    License,
    Tags,
}

/// The lines between a leading `---` line and the next `---` (or `...`) line; `None` if there is no complete
/// front matter block.
fn front_matter(text: &str) -> Option<Vec<&str>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    let mut body = Vec::new();
    for line in lines {
        let t = line.trim_end();
        if t == "---" || t == "..." {
            return Some(body);
        }
        body.push(line);
    }
    None
}

/// `key: rest` for an unindented mapping line.
fn top_level_key(line: &str) -> Option<(String, &str)> {
    if line.starts_with([' ', '\t', '-', '#']) {
        return None;
    }
    let colon = key_colon(line)?;
    let key = line.get(..colon)?.trim();
    let rest = line.get(colon + 1..)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None; // `a:b` is a plain scalar, not a key
    }
    Some((unquote(key), rest))
}

/// Byte index of the `:` ending a (possibly quoted) key.
fn key_colon(line: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') if i == 0 => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ':') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Remove a ` # comment` that is outside quotes.
fn strip_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') if prev_space || i == 0 => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return s.get(..i).unwrap_or(s),
            _ => {}
        }
        prev_space = c == ' ' || c == '\t' || c == '[' || c == ',';
    }
    s
}

/// Whether a list item is itself a mapping (`- name: x`), which this reader skips.
fn looks_like_mapping(item: &str) -> bool {
    !item.starts_with(['"', '\'']) && (item.contains(": ") || item.ends_with(':'))
}

/// Bracket depth and quote state of a flow list read so far, fed line by line (linear in the input, however
/// many lines the list spans).
#[derive(Default)]
struct FlowState {
    depth: i64,
    quote: Option<char>,
}

impl FlowState {
    fn feed(&mut self, s: &str) {
        for c in s.chars() {
            match (self.quote, c) {
                (None, '"' | '\'') => self.quote = Some(c),
                (Some(q), c) if c == q => self.quote = None,
                (None, '[') => self.depth += 1,
                (None, ']') => self.depth -= 1,
                _ => {}
            }
        }
    }

    /// Whether the brackets balance (outside quotes).
    fn closed(&self) -> bool {
        self.depth <= 0
    }
}

/// Items of a one-level flow list `[a, "b", 'c']`; nested lists or mappings are skipped.
fn flow_list(s: &str) -> Vec<String> {
    let inner = s.trim().strip_prefix('[').unwrap_or(s);
    let inner = match inner.rfind(']') {
        Some(end) => inner.get(..end).unwrap_or(inner),
        None => inner,
    };
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in inner.chars() {
        match (quote, c) {
            (None, '"' | '\'') if cur.trim().is_empty() => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, ',') => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.starts_with(['[', '{']))
        .filter_map(scalar)
        .collect()
}

/// A scalar with quotes removed; `None` for empty and null values.
fn scalar(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL" {
        return None;
    }
    let v = unquote(s);
    (!v.is_empty()).then_some(v)
}

/// Strip one level of matching quotes, undoing `\"`/`\\` in double quotes and `''` in single quotes.
fn unquote(s: &str) -> String {
    if s.len() >= 2 {
        if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            return inner.replace("''", "'");
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_block_and_flow_lists() {
        let card = parse_model_card(
            "---\nlicense: \"apache-2.0\" # SPDX\nbase_model: 'meta-llama/Llama-2-7b-hf'\ntags:\n- a\n  - \"b c\"\n- name: x\nother: 1\n---\n# Title\nbase_model: not-this\n",
        );
        assert_eq!(card.license.as_deref(), Some("apache-2.0"));
        assert_eq!(card.base_models, vec!["meta-llama/Llama-2-7b-hf"]);
        assert_eq!(card.tags, vec!["a", "b c"]);

        let card = parse_model_card(
            "---\r\nbase_model: [org/a, \"org/b\",\r\n  'org/c']\r\ntags: []\r\n---\r\n",
        );
        assert_eq!(card.base_models, vec!["org/a", "org/b", "org/c"]);
        assert!(card.tags.is_empty());

        let card = parse_model_card("---\nbase_model:\n  - org/a\n  - org/b\nlicense: mit\n---\n");
        assert_eq!(card.base_models, vec!["org/a", "org/b"]);
        assert_eq!(card.license.as_deref(), Some("mit"));
    }

    #[test]
    fn no_or_unclosed_front_matter_is_empty() {
        assert_eq!(
            parse_model_card("# Hello\nlicense: mit\n"),
            ModelCard::default()
        );
        assert_eq!(
            parse_model_card("---\nlicense: mit\n"),
            ModelCard::default()
        );
        assert_eq!(parse_model_card(""), ModelCard::default());
        assert_eq!(parse_model_card("---"), ModelCard::default());
    }

    #[test]
    fn keys_must_match_exactly() {
        let card = parse_model_card(
            "---\nbase_model_relation: finetune\nlicense_name: foo\nlicense: other\n---\n",
        );
        assert!(card.base_models.is_empty());
        assert_eq!(card.license.as_deref(), Some("other"));
    }

    #[test]
    fn long_flow_list_is_linear() {
        // An unclosed flow list over many lines used to be rescanned from the start for every line.
        let mut text = String::from("---\ntags: [\n");
        for i in 0..200_000 {
            text.push_str(&format!("  t{i},\n"));
        }
        text.push_str("]\n---\n");
        let started = std::time::Instant::now();
        let card = parse_model_card(&text);
        assert_eq!(card.tags.len(), 200_000);
        assert_eq!(card.tags[199_999], "t199999");
        assert!(
            started.elapsed().as_secs() < 5,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn odd_values_do_not_panic() {
        for text in [
            "---\nbase_model: [\n---\n",
            "---\nbase_model: \"\n---\n",
            "---\ntags: |\n  a\n---\n",
            "---\n: x\n\"unterminated: y\n---\n",
            "---\nbase_model: é'\"#[]\n---\n",
            "\u{feff}---\nlicense: ~\n---\n",
        ] {
            let _ = parse_model_card(text);
        }
        assert_eq!(
            parse_model_card("\u{feff}---\nlicense: ~\n---\n").license,
            None
        );
    }
}
