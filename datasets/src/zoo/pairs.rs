//! The labelled pairs of the zoo, derived from one lineage graph: the trained zoo's MANIFEST.json (parents,
//! traps and what they are independent of) plus the generated recipes.
//!
//! - **related**: a model and each of its ancestors (constitution C1–C5). The pair's category is the most
//!   telling mechanism on the chain (distillation before merging, before vocabulary change, continued
//!   pretraining, fine-tuning, structural change, adapter merge, quantization, reformatting).
//! - **not-related**: each trap (trained from scratch, or a fresh/synthetic twin) against the model it imitates
//!   and that model's descendants; mechanical derivatives of a trap against the imitated model and its
//!   same-recipe derivative; and cross-family pairs. A pair is never labelled independent when the graph links
//!   it (a merge of two independent models is related to both).
//! - Siblings (two derivatives of one parent) are left out: they share weights without either descending from
//!   the other, and the constitution links only chains.
//!
//! Splits are stratified: within each (category, label) group, in name order, every third pair (the 2nd, 5th,
//! ...) is `calibration`, the others `report`.

use super::recipes::{recipes, MINILM};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The nine linking mechanisms, most telling first (the order that names a chain's category).
pub const MECHANISMS: [&str; 9] = [
    "distillation",
    "merging",
    "vocabulary-modification",
    "continued-pretraining",
    "fine-tuning",
    "structural-modification",
    "adapter-merge",
    "quantization-compression",
    "identity-reformatting",
];

/// The eight exclusions.
pub const EXCLUSIONS: [&str; 8] = [
    "independent-reproduction",
    "same-family-different-size",
    "same-family-different-corpus",
    "same-architecture-independent-runs",
    "architectural-convergence",
    "similar-dimensions-different-mechanism",
    "shared-vocabulary-only",
    "same-objective-only",
];

const DIFFICULTIES: [&str; 4] = ["easy", "medium", "hard", "extreme"];

/// One labelled pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First model, relative to the zoo root.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Whether they are provenance-linked.
    pub related: bool,
    /// Constitution category (a mechanism when related, an exclusion otherwise).
    pub category: String,
    /// easy, medium, hard or extreme.
    pub difficulty: String,
    /// `calibration` or `report`.
    pub split: String,
    /// What the derivation or trap is.
    pub detail: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    models: Vec<ManifestModel>,
}

#[derive(Debug, Deserialize)]
struct ManifestModel {
    name: String,
    parents: Option<Vec<String>>,
    mechanism: String,
    independent_of: Option<Vec<String>>,
}

/// A node of the lineage graph.
#[derive(Debug, Clone)]
struct Node {
    parents: Vec<String>,
    category: String,
    detail: String,
    difficulty: String,
    /// For traps: the models it is independent of (with their descendants) and why.
    independent_of: Vec<String>,
    exclusion: Option<String>,
    generated: bool,
}

fn trained_category(mechanism: &str) -> Result<(&'static str, &'static str)> {
    Ok(match mechanism {
        "base" => ("base", "easy"),
        "fine-tuning" => ("fine-tuning", "medium"),
        "continued-pretraining" => ("continued-pretraining", "medium"),
        "vocabulary-extension" => ("vocabulary-modification", "hard"),
        "distillation" => ("distillation", "extreme"),
        "pruning" => ("structural-modification", "hard"),
        // Scaled transfer into a wider model (phi-1.5 → phi-2, Net2WiderNet) and depth up-scaling (SOLAR).
        "width-growth" | "depth-upscaling" => ("structural-modification", "hard"),
        "independent-reproduction" => ("independent-reproduction", "extreme"),
        "same-family-different-size" => ("same-family-different-size", "medium"),
        "same-tokenizer-other-data" => ("same-family-different-corpus", "hard"),
        "same-architecture-other-tokenizer" => ("same-architecture-independent-runs", "medium"),
        // The same seed, hence the same random initial weights, then trained independently (Pythia and
        // Pythia-deduped): the weights still correlate, but the constitution counts no lineage.
        "same-seed-independent-run" => ("same-architecture-independent-runs", "extreme"),
        other => bail!("MANIFEST.json: unknown mechanism {other:?}"),
    })
}

fn graph(manifest: &Path) -> Result<BTreeMap<String, Node>> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let m: Manifest =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let mut nodes = BTreeMap::new();
    for t in m.models {
        let (category, difficulty) = trained_category(&t.mechanism)?;
        let trap = EXCLUSIONS.contains(&category);
        let id = format!("trained/{}", t.name);
        nodes.insert(
            id,
            Node {
                parents: t
                    .parents
                    .unwrap_or_default()
                    .iter()
                    .map(|p| format!("trained/{p}"))
                    .collect(),
                category: category.into(),
                detail: format!("trained: {}", t.mechanism),
                difficulty: difficulty.into(),
                independent_of: t
                    .independent_of
                    .unwrap_or_default()
                    .iter()
                    .map(|p| format!("trained/{p}"))
                    .collect(),
                exclusion: trap.then(|| category.to_string()),
                generated: false,
            },
        );
    }
    nodes.insert(
        MINILM.into(),
        Node {
            parents: vec![],
            category: "base".into(),
            detail: "real all-MiniLM-L6-v2".into(),
            difficulty: "easy".into(),
            independent_of: vec![],
            exclusion: None,
            generated: false,
        },
    );
    for r in recipes() {
        let trap = EXCLUSIONS.contains(&r.category);
        nodes.insert(
            r.id.clone(),
            Node {
                parents: r.parents(),
                category: r.category.into(),
                detail: r.detail.into(),
                difficulty: r.difficulty.into(),
                independent_of: r.imitates().into_iter().collect(),
                exclusion: trap.then(|| r.category.to_string()),
                generated: true,
            },
        );
    }
    for (id, n) in &nodes {
        for p in n.parents.iter().chain(&n.independent_of) {
            if !nodes.contains_key(p) {
                bail!("{id} refers to unknown model {p}");
            }
        }
    }
    Ok(nodes)
}

/// Ancestors of `id` with the chain of nodes (from `id` upwards, excluding the ancestor) leading to each.
fn ancestors(nodes: &BTreeMap<String, Node>, id: &str) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = vec![(id.to_string(), vec![id.to_string()])];
    while let Some((cur, path)) = queue.pop() {
        for p in &nodes[&cur].parents {
            if !found.contains_key(p) {
                found.insert(p.clone(), path.clone());
                let mut next = path.clone();
                next.push(p.clone());
                queue.insert(0, (p.clone(), next));
            }
        }
    }
    found
}

fn descendants(nodes: &BTreeMap<String, Node>, id: &str) -> Vec<String> {
    nodes
        .keys()
        .filter(|n| ancestors(nodes, n).contains_key(id))
        .cloned()
        .collect()
}

struct Builder {
    pairs: Vec<Pair>,
    seen: HashMap<(String, String), bool>,
}

impl Builder {
    fn push(
        &mut self,
        a: &str,
        b: &str,
        related: bool,
        category: &str,
        difficulty: &str,
        detail: String,
    ) -> Result<()> {
        let key = if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        if a == b {
            return Ok(());
        }
        if let Some(&prev) = self.seen.get(&key) {
            if prev != related {
                bail!("pair {a} / {b} labelled both ways");
            }
            return Ok(());
        }
        self.seen.insert(key, related);
        self.pairs.push(Pair {
            a: a.into(),
            b: b.into(),
            related,
            category: category.into(),
            difficulty: difficulty.into(),
            split: String::new(),
            detail,
        });
        Ok(())
    }
}

fn hardest<'a>(d: impl Iterator<Item = &'a str>) -> &'a str {
    d.max_by_key(|d| DIFFICULTIES.iter().position(|x| x == d))
        .unwrap_or("easy")
}

/// Every labelled pair of the zoo, split.
pub fn labelled_pairs(manifest: &Path) -> Result<Vec<Pair>> {
    let nodes = graph(manifest)?;
    let related = |a: &str, b: &str| {
        ancestors(&nodes, a).contains_key(b) || ancestors(&nodes, b).contains_key(a)
    };
    let mut out = Builder {
        pairs: Vec::new(),
        seen: HashMap::new(),
    };

    // Linked: every model and each of its ancestors.
    for id in nodes.keys() {
        for (anc, chain) in ancestors(&nodes, id) {
            let hops: Vec<&Node> = chain.iter().map(|c| &nodes[c]).collect();
            let category = MECHANISMS
                .iter()
                .find(|m| hops.iter().any(|h| h.category == **m))
                .context("chain without a mechanism")?;
            let difficulty = hardest(hops.iter().map(|h| h.difficulty.as_str()));
            let detail = hops
                .iter()
                .rev()
                .map(|h| h.detail.as_str())
                .collect::<Vec<_>>()
                .join(" → ");
            out.push(id, &anc, true, category, difficulty, detail)?;
        }
    }

    // Independent: traps against what they imitate.
    for (id, node) in &nodes {
        let Some(exclusion) = &node.exclusion else {
            continue;
        };
        for target in &node.independent_of {
            let mut others = vec![target.clone()];
            others.extend(descendants(&nodes, target));
            if node.generated {
                // Easy twins: the imitated model, its trained descendants and every third generated one.
                let mut k = 0;
                others.retain(|o| {
                    k += usize::from(nodes[o].generated);
                    o == target || !nodes[o].generated || k % 3 == 1
                });
            }
            for o in others {
                if !related(id, &o) {
                    let detail = format!("{} vs {}", node.detail, nodes[&o].detail);
                    out.push(id, &o, false, exclusion, &node.difficulty, detail)?;
                }
            }
            // Mechanical derivatives of the trap against the imitated model and its same-recipe derivative.
            for d in descendants(&nodes, id) {
                let suffix = d.split_once("--").map(|(_, s)| s.to_string());
                let twin =
                    suffix.map(|s| format!("gen/{}--{s}", target.trim_start_matches("trained/")));
                for o in
                    std::iter::once(target.clone()).chain(twin.filter(|t| nodes.contains_key(t)))
                {
                    if !related(&d, &o) {
                        let detail = format!("{} derivative vs {}", node.detail, nodes[&o].detail);
                        let difficulty = hardest(
                            [node.difficulty.as_str(), nodes[&d].difficulty.as_str()].into_iter(),
                        );
                        out.push(&d, &o, false, exclusion, difficulty, detail)?;
                    }
                }
            }
        }
    }

    // Cross-family exclusions.
    let cross: &[(&str, &str, &str, &str)] = &[
        (
            "trained/L-base",
            "trained/G-base",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "trained/L-ft-shakespeare",
            "trained/G-ft-jargon",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "trained/L-cpt",
            "trained/G-cpt",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "trained/L-seed2",
            "trained/G-seed2",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "gen/L-base--int8",
            "gen/G-base--int8",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "gen/L-base--permute",
            "gen/G-base--permute",
            "similar-dimensions-different-mechanism",
            "medium",
        ),
        (
            "trained/L-otherdata",
            "trained/G-base",
            "same-objective-only",
            "easy",
        ),
        (
            "trained/L-othertok",
            "trained/G-seed2",
            "same-objective-only",
            "easy",
        ),
        (
            "trained/L-small",
            "trained/G-ft-jargon",
            "same-objective-only",
            "easy",
        ),
        (
            "trained/L-big",
            "trained/G-cpt",
            "same-objective-only",
            "easy",
        ),
        (
            "trained/L-distill",
            "trained/G-base",
            "same-objective-only",
            "easy",
        ),
        (
            MINILM,
            "trained/L-base",
            "architectural-convergence",
            "easy",
        ),
        (
            MINILM,
            "trained/G-base",
            "architectural-convergence",
            "easy",
        ),
        (
            "gen/synth-llama-Ldims",
            "trained/L-base",
            "architectural-convergence",
            "easy",
        ),
        (
            "gen/synth-llama-Ldims",
            "trained/L-seed2",
            "architectural-convergence",
            "easy",
        ),
        (
            "gen/synth-llama-Ldims",
            "trained/L-ft-shakespeare",
            "architectural-convergence",
            "easy",
        ),
        (
            "gen/synth-llama-Ldims",
            "trained/L-otherdata",
            "architectural-convergence",
            "easy",
        ),
        (
            "gen/synth-llama-Ldims",
            "gen/L-base--int4",
            "architectural-convergence",
            "easy",
        ),
    ];
    for (a, b, category, difficulty) in cross {
        if related(a, b) {
            bail!("cross pair {a} / {b} is linked");
        }
        let detail = format!("{} vs {}", nodes[*a].detail, nodes[*b].detail);
        out.push(a, b, false, category, difficulty, detail)?;
    }

    let mut pairs = out.pairs;
    assign_splits(&mut pairs);
    Ok(pairs)
}

fn assign_splits(pairs: &mut [Pair]) {
    let mut groups: BTreeMap<(String, bool), Vec<usize>> = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        groups
            .entry((p.category.clone(), p.related))
            .or_default()
            .push(i);
    }
    for idx in groups.values_mut() {
        idx.sort_by(|&x, &y| (&pairs[x].a, &pairs[x].b).cmp(&(&pairs[y].a, &pairs[y].b)));
        for (k, &i) in idx.iter().enumerate() {
            pairs[i].split = if k % 3 == 1 { "calibration" } else { "report" }.into();
        }
    }
}

/// The CSV header of the pairs file.
pub const HEADER: &str = "a,b,label,category,difficulty,split,detail";

/// Render the pairs file (sorted by split, label, category, names).
pub fn to_csv(pairs: &[Pair]) -> String {
    let mut sorted: Vec<&Pair> = pairs.iter().collect();
    sorted.sort_by(|x, y| {
        (&x.split, !x.related, &x.category, &x.a, &x.b).cmp(&(
            &y.split,
            !y.related,
            &y.category,
            &y.a,
            &y.b,
        ))
    });
    let mut s = format!("# provsearch lineage zoo pairs: generated by `cargo run -p datasets --bin zoo -- --pairs datasets/pairs.csv`; paths are relative to the zoo root.\n{HEADER}\n");
    for p in sorted {
        let label = if p.related { "related" } else { "not-related" };
        let detail = p.detail.replace(',', ";");
        s.push_str(&format!(
            "{},{},{label},{},{},{},{detail}\n",
            p.a, p.b, p.category, p.difficulty, p.split
        ));
    }
    s
}

/// Counts per (category, label, split), to check coverage.
pub fn coverage(pairs: &[Pair]) -> BTreeSet<(String, bool, String)> {
    pairs
        .iter()
        .map(|p| (p.category.clone(), p.related, p.split.clone()))
        .collect()
}

/// Unused-recipe guard: every generated model takes part in at least one pair.
pub fn unpaired(pairs: &[Pair]) -> Vec<String> {
    let used: BTreeSet<&str> = pairs
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .collect();
    recipes()
        .into_iter()
        .filter(|r| !used.contains(r.id.as_str()))
        .map(|r| r.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Vec<Pair> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo/trained/MANIFEST.json");
        labelled_pairs(&manifest).unwrap()
    }

    #[test]
    fn every_category_and_label_is_in_both_splits() {
        let p = pairs();
        assert!(p.len() >= 150, "{} pairs", p.len());
        let cov = coverage(&p);
        for split in ["calibration", "report"] {
            for m in MECHANISMS {
                assert!(
                    cov.contains(&(m.to_string(), true, split.to_string())),
                    "{m} {split}"
                );
            }
            for e in EXCLUSIONS {
                assert!(
                    cov.contains(&(e.to_string(), false, split.to_string())),
                    "{e} {split}"
                );
            }
        }
        assert!(unpaired(&p).is_empty(), "{:?}", unpaired(&p));
    }

    #[test]
    fn traps_and_merges_are_labelled_by_lineage() {
        let p = pairs();
        let find = |a: &str, b: &str| {
            p.iter()
                .find(|x| (x.a == a && x.b == b) || (x.a == b && x.b == a))
                .unwrap_or_else(|| panic!("{a} / {b} missing"))
        };
        assert!(!find("trained/L-seed2", "trained/L-base").related);
        assert!(!find("trained/L-small", "trained/L-distill").related);
        assert!(find("trained/L-distill", "trained/L-base").related);
        assert!(find("gen/L-merge-seeds", "trained/L-seed2").related);
        assert!(find("gen/L-merge-seeds", "trained/L-base").related);
        assert_eq!(
            find("gen/L-ft-shakespeare--int4", "trained/L-base").category,
            "fine-tuning"
        );
        assert!(!find("gen/L-seed2--int4", "gen/L-base--int4").related);
        // No siblings.
        assert!(!p
            .iter()
            .any(|x| x.a == "gen/L-base--int8" && x.b == "gen/L-base--int4"));
    }
}
