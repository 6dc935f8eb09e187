//! README.md model cards: the YAML front matter fields provsearch reports (base_model, license, tags).
//!
//! CONTRACT (implementation pending). Never fails: a card without front matter, or with front matter this small
//! reader cannot follow, yields empty fields.

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
    let _ = text;
    todo!()
}
