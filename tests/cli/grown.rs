//! Derivatives built from more weights than one parent holds, or laid out unlike it: depth up-scaling and
//! passthrough frankenmerges (stacked layers), width growth (scaled transfer), sparse upcycling into experts,
//! TIES/DARE task-vector merges, and a conversion to fused projections. Each is related to every model whose
//! weights it carries, and a fresh initialisation of the same layout to none.

use super::util::{compare, derive, num, trained};
use datasets::derive::{add_noise, fresh_init, int4_block, task_merge, TaskMerge};
use datasets::grow::{fuse_projections, stack_layers, upcycle_moe};
use datasets::residual::grow_width;
use datasets::{Checkpoint, Storage};
use serde_json::Value;
use std::path::Path;

fn read(name: &str) -> Checkpoint {
    Checkpoint::read(&trained(name)).expect("read trained zoo model")
}

fn write(ckpt: &Checkpoint, dir: &Path) {
    ckpt.write(dir, Storage::F16, 1).expect("write snapshot");
}

fn related(a: &Path, b: &Path) -> Value {
    let c = compare(a, b);
    assert_eq!(c["related"], true, "{} ~ {}: {c}", a.display(), b.display());
    c
}

fn unrelated(a: &Path, b: &Path) -> Value {
    let c = compare(a, b);
    assert_eq!(
        c["related"],
        false,
        "{} ~ {}: {c}",
        a.display(),
        b.display()
    );
    c
}

#[test]
fn stacked_layers_are_related_to_each_model_they_come_from_and_to_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (upscaled, franken, twin) = (
        tmp.path().join("upscaled"),
        tmp.path().join("franken"),
        tmp.path().join("twin"),
    );
    // SOLAR-style: layers 0-2 and 1-3 of L-base, 6 layers (layers 1 and 2 twice).
    let base = read("L-base");
    let stacked =
        stack_layers(&[&base], &[(0, 0), (0, 1), (0, 2), (0, 1), (0, 2), (0, 3)]).unwrap();
    write(&stacked, &upscaled);
    let c = related(&upscaled, &trained("L-base"));
    assert!(num(&c["signals"], "wvc") > 0.95, "{c}");
    let mut fresh = stacked.clone();
    fresh_init(&mut fresh, 0.02, 3);
    write(&fresh, &twin);
    unrelated(&twin, &trained("L-base"));

    // A passthrough merge of two independently trained models: the embeddings and layers 0-1 of L-seed2, layers
    // 2-3 of L-otherdata. Related to both (each contributed weights), to neither's independent sibling L-base.
    let (a, b) = (read("L-seed2"), read("L-otherdata"));
    write(
        &stack_layers(&[&a, &b], &[(0, 0), (0, 1), (1, 2), (1, 3)]).unwrap(),
        &franken,
    );
    related(&franken, &trained("L-seed2"));
    let c = related(&franken, &trained("L-otherdata"));
    // The embeddings are L-seed2's, so against L-otherdata only the two layers speak.
    assert!(num(&c["signals"], "eas") < 0.5, "{c}");
    unrelated(&franken, &trained("L-base"));
}

#[test]
fn width_grown_model_is_related_and_a_fresh_model_of_its_width_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (grown, twin) = (tmp.path().join("grown"), tmp.path().join("twin"));
    // 64 → 96 channels by copies, then noise of half the weights (the training that scaled transfer goes on to).
    derive(&trained("L-base"), &grown, Storage::BF16, 1, |c| {
        grow_width(c, 96, 4).unwrap();
        add_noise(c, 0.5, 6);
    });
    let c = related(&grown, &trained("L-base"));
    // No tensor keeps its shape, so only the channel profiles carry weight evidence.
    assert_eq!(c["signals"]["wvc"], Value::Null, "{c}");
    assert!(num(&c["details"]["channels"], "similarity") > 0.6, "{c}");
    derive(&trained("L-base"), &twin, Storage::F16, 1, |c| {
        grow_width(c, 96, 4).unwrap();
        fresh_init(c, 0.02, 8);
    });
    unrelated(&twin, &trained("L-base"));
    // A model trained independently at width 96 (same tokenizer and corpus) is not the grown one's relative.
    unrelated(&grown, &trained("L-big"));
}

#[test]
fn upcycled_mixture_of_experts_is_related_to_its_dense_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let (moe, twin) = (tmp.path().join("moe"), tmp.path().join("twin"));
    derive(&trained("L-ft-heavy"), &moe, Storage::F16, 1, |c| {
        upcycle_moe(c, 8, 0.01, 2).unwrap();
        int4_block(c, 32);
    });
    related(&moe, &trained("L-ft-heavy"));
    // Through L-ft-heavy, also to its parent.
    related(&moe, &trained("L-base"));
    derive(&trained("L-ft-heavy"), &twin, Storage::F16, 1, |c| {
        upcycle_moe(c, 8, 0.01, 2).unwrap();
        fresh_init(c, 0.02, 5);
    });
    unrelated(&twin, &trained("L-ft-heavy"));
    unrelated(&moe, &trained("L-seed2"));
}

#[test]
fn ties_and_dare_merges_are_related_to_the_base_and_each_fine_tune() {
    let tmp = tempfile::tempdir().unwrap();
    let base = read("L-base");
    let tuned = ["L-ft-shakespeare", "L-cpt-ft-jargon", "L-ft-heavy"].map(read);
    for (method, density) in [(TaskMerge::Ties, 0.2), (TaskMerge::Dare, 0.1)] {
        let dir = tmp.path().join(format!("{method:?}"));
        write(
            &task_merge(&base, &tuned.iter().collect::<Vec<_>>(), method, density, 7),
            &dir,
        );
        for parent in [
            "L-base",
            "L-ft-shakespeare",
            "L-cpt-ft-jargon",
            "L-ft-heavy",
        ] {
            related(&dir, &trained(parent));
        }
        unrelated(&dir, &trained("L-seed2"));
        unrelated(&dir, &trained("L-sameinit"));
    }
}

#[test]
fn fused_projection_layout_is_related_to_the_split_original() {
    let tmp = tempfile::tempdir().unwrap();
    let (fused, twin) = (tmp.path().join("fused"), tmp.path().join("twin"));
    derive(&trained("L-ft-heavy"), &fused, Storage::F16, 1, |c| {
        fuse_projections(c).unwrap();
        int4_block(c, 32);
    });
    let c = related(&fused, &trained("L-ft-heavy"));
    // q/k/v and gate/up are stored fused, so only o_proj, down_proj and the embeddings are compared in place.
    assert!(num(&c["signals"], "wvc") > 0.95, "{c}");
    related(&fused, &trained("L-base"));
    derive(&trained("L-ft-heavy"), &twin, Storage::F16, 1, |c| {
        fuse_projections(c).unwrap();
        fresh_init(c, 0.02, 4);
    });
    unrelated(&twin, &trained("L-ft-heavy"));
}
