//! Derivatives that keep no tensor position of their parent: width pruning and a reordering of the residual
//! stream. Their embedding channels are their parent's, found by content (`score::channels`).

use super::util::{compare, derive, minilm, num, synth, trained};
use datasets::derive::{add_noise, fresh_init, int8_per_channel};
use datasets::residual::{permute_residual, prune_width};
use datasets::synth::Family;
use datasets::Storage;
use serde_json::Value;

/// The committed trained zoo model L-base (a 64-wide Llama trained on text).
fn l_base() -> std::path::PathBuf {
    trained("L-base")
}

fn channels(c: &Value) -> &Value {
    &c["details"]["channels"]
}

#[test]
fn real_model_with_its_residual_channels_reordered_is_related() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("minilm-permuted");
    derive(&minilm(), &dst, Storage::F16, 1, |c| {
        permute_residual(c, 11).unwrap();
        int8_per_channel(c);
    });
    let c = compare(&minilm(), &dst);
    // Nothing is left at aligned positions ...
    assert!(num(&c["signals"], "wvc").abs() < 0.05, "{c}");
    // ... but every profiled channel finds its original, at another index.
    let ch = channels(&c);
    assert!(num(ch, "similarity") > 0.95, "{c}");
    assert!(ch["pairs"].as_u64().unwrap() >= 28, "{c}");
    assert!(ch["same_index"].as_u64().unwrap() <= 2, "{c}");
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c, "identity_score") > 0.9, "{c}");
    let evidence = c["evidence"].to_string();
    assert!(evidence.contains("embedding channels"), "{evidence}");
}

#[test]
fn width_pruned_trained_model_is_related_and_its_pruned_fresh_twin_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (pruned, noisy, twin) = (
        tmp.path().join("pruned"),
        tmp.path().join("pruned-noisy"),
        tmp.path().join("twin"),
    );
    derive(&l_base(), &pruned, Storage::F16, 1, |c| {
        prune_width(c, 40).unwrap();
    });
    // Pruned, then moved as far as noise as large as the weights moves them (a stand-in for healing).
    derive(&l_base(), &noisy, Storage::BF16, 1, |c| {
        prune_width(c, 40).unwrap();
        add_noise(c, 1.0, 5);
    });
    // The same pruned config, freshly initialised: same shapes, same tokenizer, no lineage.
    derive(&l_base(), &twin, Storage::F16, 1, |c| {
        prune_width(c, 40).unwrap();
        fresh_init(c, 0.02, 9);
    });
    for child in [&pruned, &noisy] {
        let c = compare(&l_base(), child);
        // Hidden 64 against 40: no tensor of matching shape, so no positional WVC at all.
        assert_eq!(c["signals"]["wvc"], Value::Null, "{c}");
        assert!(num(channels(&c), "similarity") > 0.6, "{c}");
        assert_eq!(c["related"], true, "{c}");
    }
    let c = compare(&l_base(), &twin);
    assert_eq!(c["related"], false, "{c}");
    assert!(num(&c, "identity_score") < 0.2, "{c}");
    assert_eq!(channels(&c)["similarity"], Value::Null, "{c}");
}

#[test]
fn independent_models_of_other_widths_match_no_channels() {
    // Trained zoo models of the same family, tokenizer and corpus at widths 96 and 48, trained independently.
    for other in ["L-big", "L-small", "L-seed2", "L-otherdata"] {
        let c = compare(&l_base(), &trained(other));
        assert_eq!(c["related"], false, "{other}: {c}");
        assert!(num(&c, "identity_score") < 0.2, "{other}: {c}");
        let r = channels(&c)["similarity"].as_f64();
        assert!(r.is_none_or(|r| r < 0.35), "{other}: {c}");
    }
    // Synthetic independent models of each family: no channel pairs survive the held-out half.
    for family in [Family::Llama, Family::Gpt2, Family::Bert] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        synth(&a, family, 21);
        synth(&b, family, 22);
        let c = compare(&a, &b);
        assert_eq!(channels(&c)["similarity"], Value::Null, "{family:?}: {c}");
    }
}

/// The channel codes a query looks up in the index (`provsearch_index::channel_codes`) separate the same
/// models that `compare` separates: width-changed and residual-permuted relatives share at least
/// `MIN_SHARED_CODES` codes with their parent (measured: 7 for the healed width-pruned model, 14 grown, 18
/// depth-upscaled, 256 permuted), independent models of the same tokenizer, corpus and family fewer (0-1).
#[test]
fn channel_codes_of_real_checkpoints_are_shared_by_relatives_only() {
    use provsearch_index::channel_codes::{channel_codes, shared_codes, MIN_SHARED_CODES};
    let tmp = tempfile::tempdir().unwrap();
    let permuted = tmp.path().join("permuted");
    derive(&l_base(), &permuted, Storage::F16, 1, |c| {
        permute_residual(c, 5).unwrap();
    });
    let codes = |path: &std::path::Path| {
        let options = provsearch_ingest::FingerprintOptions {
            skip_digests: true,
            ..Default::default()
        };
        let f = provsearch_ingest::fingerprint(path.to_str().unwrap(), &options)
            .unwrap()
            .fingerprint;
        channel_codes(f.weights.embedding.as_ref().unwrap())
    };
    let parent = codes(&l_base());
    assert!(parent.len() > 200, "{}", parent.len());
    assert_eq!(shared_codes(&parent, &codes(&permuted)), parent.len());
    for relative in ["L-widthpruned", "L-widthgrown", "L-upscaled"] {
        let shared = shared_codes(&parent, &codes(&trained(relative)));
        assert!(shared >= MIN_SHARED_CODES, "{relative}: {shared}");
    }
    for other in [
        "L-seed2",
        "L-big",
        "L-small",
        "L-otherdata",
        "L-sameinit",
        "L-distill",
    ] {
        let shared = shared_codes(&parent, &codes(&trained(other)));
        assert!(shared < MIN_SHARED_CODES, "{other}: {shared}");
    }
}
