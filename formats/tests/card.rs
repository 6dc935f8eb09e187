//! Model card front matter on a real README.

use provsearch_formats::card::parse_model_card;

mod common;

#[test]
fn real_minilm_readme() {
    let text = std::fs::read_to_string(common::test_models().join("minilm/README.md")).unwrap();
    let card = parse_model_card(&text);
    assert_eq!(card.license.as_deref(), Some("apache-2.0"));
    assert_eq!(
        card.tags,
        vec![
            "sentence-transformers",
            "feature-extraction",
            "sentence-similarity",
            "transformers"
        ]
    );
    assert!(card.base_models.is_empty());
}

#[test]
fn derivative_card() {
    let card = parse_model_card(
        "---\nlicense: llama2\nbase_model:\n- codellama/CodeLlama-7b-hf   # the parent\npipeline_tag: text-generation\n\
         tags: [code, \"llama-2\"]\n---\n\n# My fine-tune\n\n```yaml\nbase_model: decoy\n```\n",
    );
    assert_eq!(card.base_models, vec!["codellama/CodeLlama-7b-hf"]);
    assert_eq!(card.license.as_deref(), Some("llama2"));
    assert_eq!(card.tags, vec!["code", "llama-2"]);
}
