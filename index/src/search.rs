//! Answering "which indexed models is this fingerprint derived from?": candidates from the composite vectors
//! (each segment's memory-mapped HNSW graph together with a scan of its sign sketches, or an exact scan of
//! its vectors when it has none or a filter is selective) plus exact metadata hits
//! (same weights digest, declared parents and children, same architecture), each rescored exactly with
//! [`crate::score::compare`] and ranked related-first by identity score. `exact` rescores every live record:
//! the ground truth the approximate path is measured against.

use crate::channel_codes::{self, SharedCounts};
use crate::composite::composite;
use crate::error::Result;
use crate::prefetch::prefetch_lines;
use crate::reader::{DocRef, IndexReader};
use crate::schema::{Fingerprint, SourceFormat};
use crate::score::{compare, Comparison};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::{BinaryHeap, HashSet};

/// Query options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryOptions {
    /// Results to return.
    pub top_k: usize,
    /// Most composite-vector candidates rescored exactly.
    pub candidates: usize,
    /// Candidates always rescored (the best by composite similarity); past these, only candidates whose
    /// composite similarity reaches `rescore_floor` are.
    pub min_candidates: usize,
    /// Composite similarity from which candidates beyond `min_candidates` are still rescored.
    pub rescore_floor: f32,
    /// HNSW search breadth (at least `candidates`).
    pub ef_search: usize,
    /// Share of each segment's records also taken, as candidates, from a scan of its sign sketches (the
    /// nearest by Hamming distance; [`crate::sketch`]): they join the graph's and the best `candidates` of
    /// both by composite similarity go on. 0 turns the scan off.
    #[serde(default = "default_sketch_share")]
    pub sketch_share: f64,
    /// tantivy query restricting the results.
    pub filter: Option<String>,
    /// Rescore every live record (slow, exact).
    pub exact: bool,
    /// Model id to leave out (the query model itself).
    pub exclude_id: Option<String>,
    /// Architecture-hash matches added as candidates (the best by composite similarity).
    pub arch_candidates: usize,
    /// Related hits whose own neighbourhoods are searched too (relatives of relatives: a sibling fine-tuned
    /// far from the query may be close to their common parent).
    pub expand: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            top_k: 10,
            candidates: 100,
            min_candidates: 10,
            // ≈ 4 standard deviations above the mean composite similarity of unrelated models (0.13 ± 0.04 at
            // the default configuration; `scale-bench --separation`). Weaker relatives are reached through
            // `expand`.
            rescore_floor: 0.3,
            // 128 since the sketch scan joined it (192 alone): the same recall of relatives above the floor at
            // 200K (0.998, 1000 queries), 0.5 ms less per query.
            ef_search: 128,
            sketch_share: default_sketch_share(),
            filter: None,
            exact: false,
            exclude_id: None,
            arch_candidates: 4,
            // 2 since session 16 (4 before): on a 1M scale-bench index the same recall (64/64 exhaustive,
            // 0.99930 above the floor, 200/200 width-pruned parents), 6.3 fewer records rescored per query and
            // 0.9-2.0 ms less p50 in three alternated rounds (datasets/runs/2026-11-23-s16).
            expand: 2,
        }
    }
}

/// Why a record became a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Composite-vector search.
    Vector,
    /// Metadata: same digest, declared parent/child or same architecture.
    Metadata,
    /// Composite-vector search around a related hit (a relative of a relative).
    Expansion,
    /// Shared embedding-channel codes ([`crate::channel_codes`]): width-changed or residual-permuted relatives.
    Channels,
    /// Exhaustive mode.
    Exhaustive,
}

/// One ranked result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    /// Rank, from 1.
    pub rank: usize,
    /// Model id.
    pub model_id: String,
    /// Revision, when known.
    pub revision: Option<String>,
    /// Composite-vector similarity to the query.
    pub composite_similarity: f32,
    /// The exact comparison.
    pub comparison: Comparison,
    /// Parameter count.
    pub parameter_count: u64,
    /// Config `model_type`.
    pub model_type: String,
    /// Declared base models.
    pub declared_base_models: Vec<String>,
    /// Weight file format.
    #[serde(default = "safetensors")]
    pub format: SourceFormat,
    /// Quantization scheme of the stored weights (`"Q4_K"`, `"gptq-4bit"`, ...), `None` for float weights.
    #[serde(default)]
    pub quantization: Option<String>,
    /// How the record was found.
    pub origin: Origin,
}

/// Default [`QueryOptions::sketch_share`], one record in 400: a relative at composite similarity 0.5 is in a
/// segment's nearest 0.25% by Hamming distance 99% of the time, and the scan's candidates cost one random read
/// of a vector each (2 500 per million records) on top of the pass over the sketches. Measured with
/// `scale-bench` (`relative_recall_above_floor`, docs/index.md).
pub const DEFAULT_SKETCH_SHARE: f64 = 0.0025;

fn default_sketch_share() -> f64 {
    DEFAULT_SKETCH_SHARE
}

/// The format of a hit from a server that did not report one.
fn safetensors() -> SourceFormat {
    SourceFormat::Safetensors
}

/// A query's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryResult {
    /// Ranked hits, related first.
    pub hits: Vec<Hit>,
    /// Records rescored exactly.
    pub rescored: usize,
    /// Live records searched.
    pub searched: u64,
    /// Index generation answered from.
    pub generation: u64,
    /// Whether HNSW graphs were used (false: exact vector scan or exhaustive).
    pub used_graph: bool,
}

/// Top-n by score, keeping the best (min-heap of (score, doc)).
struct TopN {
    n: usize,
    heap: BinaryHeap<std::cmp::Reverse<(i32, DocRef)>>,
}

impl TopN {
    fn new(n: usize) -> Self {
        TopN {
            n: n.max(1),
            heap: BinaryHeap::with_capacity(n + 1),
        }
    }

    fn push(&mut self, score: i32, r: DocRef) {
        if self.heap.len() < self.n {
            self.heap.push(std::cmp::Reverse((score, r)));
        } else if let Some(std::cmp::Reverse((worst, _))) = self.heap.peek() {
            if score > *worst {
                self.heap.pop();
                self.heap.push(std::cmp::Reverse((score, r)));
            }
        }
    }

    fn into_sorted(self) -> Vec<(i32, DocRef)> {
        let mut v: Vec<(i32, DocRef)> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v
    }
}

/// Sketch picks ahead of the one being scored whose vectors are requested from memory.
const PREFETCH_VECTORS_AHEAD: usize = 8;

/// HNSW search breadth around an expansion seed.
const EXPANSION_EF: usize = 64;

/// Same-architecture metadata hits are scanned only when a segment has at most this many.
const ARCH_SCAN_LIMIT: usize = 2048;

/// Fraction of a segment below which a filter is applied by scanning the allowed records directly.
const SCAN_FRACTION: f64 = 0.08;

/// Live records of each segment that pass the filter (`None`: every live record).
fn allowed_sets(reader: &IndexReader, filter: Option<&str>) -> Result<Vec<Option<RoaringBitmap>>> {
    let mut out = Vec::with_capacity(reader.segments().len());
    for (i, s) in reader.segments().iter().enumerate() {
        let dead = reader.deleted(i);
        match filter {
            Some(q) => {
                let mut bits = s.meta_index()?.filter(q)?;
                bits -= dead;
                out.push(Some(bits));
            }
            None if dead.is_empty() => out.push(None),
            None => {
                let mut all = RoaringBitmap::new();
                all.insert_range(0..s.count());
                all -= dead;
                out.push(Some(all));
            }
        }
    }
    Ok(out)
}

/// Composite-vector candidates over all segments.
fn vector_candidates(
    reader: &IndexReader,
    q: &[i8],
    allowed: &[Option<RoaringBitmap>],
    n: usize,
    ef_search: usize,
    sketch_share: f64,
) -> (Vec<(i32, DocRef)>, bool) {
    let mut top = TopN::new(n);
    let mut used_graph = false;
    let q_sketch = crate::sketch::sketch(q);
    for (i, s) in reader.segments().iter().enumerate() {
        let count = s.count();
        let allow = allowed[i].as_ref();
        let allowed_count = allow.map_or(count as u64, |b| b.len());
        if allowed_count == 0 {
            continue;
        }
        let selective = (allowed_count as f64) < SCAN_FRACTION * count as f64;
        match s.graph() {
            Some(graph) if !selective => {
                used_graph = true;
                // Widen the search in proportion to what the filter and tombstones remove; refused records
                // are walked through but not returned.
                let wide = ((n as f64) * count as f64 / allowed_count as f64).ceil() as usize;
                let ef = ef_search.max(wide.min(count as usize));
                let accept = |doc: u32| allow.is_none_or(|b| b.contains(doc));
                // The graph search and the sketch scan are independent reads of the segment: with a second
                // core (serve, the CLI) they run side by side; on one thread (`join` runs both in turn) the
                // result is the same.
                let sketches = s.sketch().filter(|_| sketch_share > 0.0);
                let (hits, sketched) = rayon::join(
                    || {
                        graph.search(
                            s.vectors(),
                            q,
                            n,
                            ef,
                            allow.is_some().then_some(&accept as _),
                        )
                    },
                    || {
                        // The sketch scan reaches relatives the graph search cannot (small families have no
                        // gradient leading to them); its picks are ranked with the graph's by exact
                        // similarity.
                        let k = ((count as f64 * sketch_share).ceil() as usize).max(n);
                        sketches.map_or_else(Vec::new, |sk| sk.nearest(&q_sketch, k, allow))
                    },
                );
                let mut taken = FxHashSet::default();
                for (doc, score) in hits {
                    taken.insert(doc);
                    top.push(score, DocRef { segment: i, doc });
                }
                // The sketch's picks are scattered over the vectors (a few thousand per million records):
                // each vector is requested a few picks ahead of its turn, so that the misses overlap.
                for (k, &doc) in sketched.iter().enumerate() {
                    if let Some(&ahead) = sketched.get(k + PREFETCH_VECTORS_AHEAD) {
                        prefetch_lines(s.vector(ahead));
                    }
                    if taken.insert(doc) {
                        top.push(
                            crate::composite::dot(q, s.vector(doc)),
                            DocRef { segment: i, doc },
                        );
                    }
                }
            }
            _ => match allow {
                Some(bits) => {
                    for doc in bits {
                        top.push(
                            crate::composite::dot(q, s.vector(doc)),
                            DocRef { segment: i, doc },
                        );
                    }
                }
                None => {
                    let dim = q.len();
                    for (doc, v) in s.vectors().chunks_exact(dim).enumerate() {
                        top.push(
                            crate::composite::dot(q, v),
                            DocRef {
                                segment: i,
                                doc: doc as u32,
                            },
                        );
                    }
                }
            },
        }
    }
    (top.into_sorted(), used_graph)
}

/// Exact metadata hits: same content digest, the query's declared parents, models declaring the query as
/// parent, and the same-architecture models closest in composite similarity.
fn metadata_candidates(
    reader: &IndexReader,
    f: &Fingerprint,
    q: &[i8],
    allowed: &[Option<RoaringBitmap>],
    options: &QueryOptions,
) -> Result<Vec<DocRef>> {
    let mut out = Vec::new();
    for (i, s) in reader.segments().iter().enumerate() {
        let m = s.meta_index()?;
        let x = *m.fields();
        let mut bits = RoaringBitmap::new();
        if !f.source.content_digest.is_empty() {
            bits |= m.exact(x.digest, &f.source.content_digest)?;
        }
        for b in &f.metadata.declared_base_models {
            bits |= m.exact(x.id, b)?;
        }
        bits |= m.exact(x.base_model, &f.source.id)?;
        // A popular architecture has thousands of unrelated models: the vector search covers those.
        let same_arch = if options.arch_candidates > 0 && !f.metadata.arch_hash.is_empty() {
            m.exact_at_most(x.arch_hash, &f.metadata.arch_hash, ARCH_SCAN_LIMIT)?
        } else {
            None
        };
        if let Some(same) = same_arch {
            let mut top = TopN::new(options.arch_candidates);
            for doc in &same {
                top.push(
                    crate::composite::dot(q, s.vector(doc)),
                    DocRef { segment: i, doc },
                );
            }
            for (_, r) in top.into_sorted() {
                bits.insert(r.doc);
            }
        }
        for doc in bits {
            let r = DocRef { segment: i, doc };
            if reader.is_live(r) && allowed[i].as_ref().is_none_or(|a| a.contains(doc)) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// The channel codes of `f` ([`channel_codes::channel_codes`]), empty when its anchors are of another set.
fn codes_of(f: &Fingerprint) -> Vec<u32> {
    match &f.weights.embedding {
        Some(e) if e.anchor_set_version == crate::anchors::ANCHOR_SET_VERSION => {
            channel_codes::channel_codes(e)
        }
        _ => Vec::new(),
    }
}

/// How many of `codes` each record shares, per segment (`None` for a segment without channel codes). With
/// the counts of an earlier lookup, each segment reads only the postings of the codes that differ.
fn code_counts(
    reader: &IndexReader,
    codes: &[u32],
    earlier: Option<Vec<Option<SharedCounts>>>,
) -> Vec<Option<SharedCounts>> {
    let mut earlier = earlier.unwrap_or_default().into_iter();
    reader
        .segments()
        .iter()
        .map(|s| {
            let before = earlier.next().flatten();
            let file = s.channels()?;
            Some(match before {
                Some(b) => file.recount(b, codes),
                None => file.count(codes, channel_codes::MIN_SHARED_CODES),
            })
        })
        .collect()
}

/// Records that share embedding channels with the query at any index: at least
/// [`channel_codes::MIN_SHARED_CODES`] channel codes, the best [`channel_codes::MAX_CODE_CANDIDATES`] per segment.
fn channel_candidates(
    reader: &IndexReader,
    counts: &[Option<SharedCounts>],
    allowed: &[Option<RoaringBitmap>],
) -> Vec<DocRef> {
    let mut out = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let Some(c) = c else {
            continue;
        };
        let shared = c.best(channel_codes::MAX_CODE_CANDIDATES, |doc| {
            reader.is_live(DocRef { segment: i, doc })
                && allowed[i].as_ref().is_none_or(|a| a.contains(doc))
        });
        out.extend(
            shared
                .into_iter()
                .map(|(doc, _)| DocRef { segment: i, doc }),
        );
    }
    out
}

fn rank(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        let ra = a.comparison.related == Some(true);
        let rb = b.comparison.related == Some(true);
        rb.cmp(&ra)
            .then(
                b.comparison
                    .identity_score
                    .unwrap_or(-1.0)
                    .total_cmp(&a.comparison.identity_score.unwrap_or(-1.0)),
            )
            // Saturated scores (a parent and its sibling quantizations all reach 1.0) are told apart by the
            // raw weight correlation, then by id, the same way whatever the candidate path.
            .then(
                b.comparison
                    .signals
                    .wvc
                    .similarity
                    .unwrap_or(-1.0)
                    .total_cmp(&a.comparison.signals.wvc.similarity.unwrap_or(-1.0)),
            )
            .then_with(|| a.model_id.cmp(&b.model_id))
    });
    for (i, h) in hits.iter_mut().enumerate() {
        h.rank = i + 1;
    }
}

fn rescore(
    reader: &IndexReader,
    f: &Fingerprint,
    q: &[i8],
    refs: &[(DocRef, Origin)],
    exclude: Option<&str>,
) -> Result<Vec<(DocRef, Hit)>> {
    let config = reader.manifest().composite;
    // Every candidate's record is asked for before any is read, so those not cached are read side by side.
    // An exhaustive query (every record) asks only for what the threads will read next.
    let mut hits = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(RESCORE_CHUNK) {
        for &(r, _) in chunk {
            reader.segments()[r.segment].prefetch_records(r.doc..r.doc + 1);
        }
        let scored: Vec<Result<Option<(DocRef, Hit)>>> = chunk
            .par_iter()
            .map(|&(r, origin)| rescore_one(reader, f, q, &config, r, origin, exclude))
            .collect();
        for s in scored {
            if let Some(h) = s? {
                hits.push(h);
            }
        }
    }
    Ok(hits)
}

/// Candidates whose records [`rescore`] asks the kernel for at once: all of a query's (a few dozen), and in
/// an exhaustive query some 15 MB of records at a time.
const RESCORE_CHUNK: usize = 256;

/// The hit for record `r` compared with `f`, or `None` for the excluded id.
fn rescore_one(
    reader: &IndexReader,
    f: &Fingerprint,
    q: &[i8],
    config: &crate::composite::CompositeConfig,
    r: DocRef,
    origin: Origin,
    exclude: Option<&str>,
) -> Result<Option<(DocRef, Hit)>> {
    let seg = &reader.segments()[r.segment];
    let archived = seg.record(r.doc)?;
    if exclude.is_some_and(|id| archived.source.id.as_str() == id) {
        return Ok(None);
    }
    let other = seg.fingerprint(r.doc)?;
    let comparison = compare(f, &other);
    Ok(Some((
        r,
        Hit {
            rank: 0,
            model_id: other.source.id,
            revision: other.source.revision,
            composite_similarity: config.similarity(q, seg.vector(r.doc)),
            comparison,
            parameter_count: other.source.parameter_count,
            model_type: other.metadata.model_type,
            declared_base_models: other.metadata.declared_base_models,
            format: other.source.format,
            quantization: other.source.quantization,
            origin,
        },
    )))
}

/// Search the index for relatives of `f`.
pub fn query(reader: &IndexReader, f: &Fingerprint, options: &QueryOptions) -> Result<QueryResult> {
    let config = reader.manifest().composite;
    let q = composite(f, &config);
    let allowed = allowed_sets(reader, options.filter.as_deref())?;
    let searched: u64 = allowed
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.as_ref()
                .map_or(reader.segments()[i].count() as u64, |b| b.len())
        })
        .sum();
    let mut seen: HashSet<DocRef> = HashSet::new();
    // Kept for the expansion, whose parent usually shares most of the query's codes.
    let mut query_code_counts = None;
    let (refs, used_graph) = if options.exact {
        let mut refs = Vec::with_capacity(searched as usize);
        for (i, s) in reader.segments().iter().enumerate() {
            match &allowed[i] {
                Some(bits) => refs.extend(
                    bits.iter()
                        .map(|doc| (DocRef { segment: i, doc }, Origin::Exhaustive)),
                ),
                None => refs.extend(
                    (0..s.count()).map(|doc| (DocRef { segment: i, doc }, Origin::Exhaustive)),
                ),
            }
        }
        (refs, false)
    } else {
        let (vector, used_graph) = vector_candidates(
            reader,
            &q,
            &allowed,
            options.candidates.max(options.top_k),
            options.ef_search,
            options.sketch_share,
        );
        let mut refs = Vec::new();
        for r in worth_rescoring(vector, options, &config) {
            if seen.insert(r) {
                refs.push((r, Origin::Vector));
            }
        }
        for r in metadata_candidates(reader, f, &q, &allowed, options)? {
            if seen.insert(r) {
                refs.push((r, Origin::Metadata));
            }
        }
        let codes = codes_of(f);
        if !codes.is_empty() {
            let counts = code_counts(reader, &codes, None);
            for r in channel_candidates(reader, &counts, &allowed) {
                if seen.insert(r) {
                    refs.push((r, Origin::Channels));
                }
            }
            query_code_counts = Some(counts);
        }
        (refs, used_graph)
    };
    let mut scored = rescore(reader, f, &q, &refs, options.exclude_id.as_deref())?;
    if !options.exact && options.expand > 0 {
        let refs = expansion_candidates(
            reader,
            &scored,
            &allowed,
            &mut seen,
            query_code_counts,
            options,
        )?;
        scored.extend(rescore(
            reader,
            f,
            &q,
            &refs,
            options.exclude_id.as_deref(),
        )?);
    }
    let mut hits: Vec<Hit> = scored.into_iter().map(|(_, h)| h).collect();
    rank(&mut hits);
    let rescored = hits.len();
    hits.truncate(options.top_k);
    Ok(QueryResult {
        hits,
        rescored,
        searched,
        generation: reader.manifest().generation,
        used_graph,
    })
}

/// Which vector candidates (best first) get an exact rescoring: always the best `min_candidates` (at least
/// `top_k`), then the rest only while their composite similarity reaches `rescore_floor`.
fn worth_rescoring(
    vector: Vec<(i32, DocRef)>,
    options: &QueryOptions,
    config: &crate::composite::CompositeConfig,
) -> impl Iterator<Item = DocRef> {
    let scale = config.scale();
    let floor = (options.rescore_floor * scale * scale) as i32;
    let always = options.min_candidates.max(options.top_k);
    vector
        .into_iter()
        .enumerate()
        .take_while(move |(n, (score, _))| *n < always || *score >= floor)
        .map(|(_, (_, r))| r)
}

/// Relatives of relatives: search the composite vectors around the best related hits (their stored vectors as
/// queries) for records not yet `seen`, which the caller rescores against the query. A heavy fine-tune and
/// its sibling may correlate too weakly for the query's own vector to rank the sibling, while both sit close
/// to their common parent.
fn expansion_candidates(
    reader: &IndexReader,
    scored: &[(DocRef, Hit)],
    allowed: &[Option<RoaringBitmap>],
    seen: &mut HashSet<DocRef>,
    query_code_counts: Option<Vec<Option<SharedCounts>>>,
    options: &QueryOptions,
) -> Result<Vec<(DocRef, Origin)>> {
    let config = reader.manifest().composite;
    let mut seeds: Vec<&(DocRef, Hit)> = scored
        .iter()
        .filter(|(_, h)| h.comparison.related == Some(true) && !h.comparison.identical_weights)
        .collect();
    seeds.sort_by(|a, b| {
        b.1.comparison
            .identity_score
            .unwrap_or(0.0)
            .total_cmp(&a.1.comparison.identity_score.unwrap_or(0.0))
    });
    let mut refs = Vec::new();
    // The best seed's channel codes too: a width-pruned or residual-permuted relative of the query's parent
    // shares channels with the parent far more than with a heavily tuned query. One seed only: each costs a
    // record read and its codes. The parent's counts start from the query's, so that only the postings of the
    // codes they do not share are read: few when the query is a quantized or lightly tuned copy of its parent.
    // (In `scale-bench`'s corpus relatives are noisy copies that share few codes exactly, so there the
    // parent is mostly counted afresh: no measurable change at 1M, session 14.)
    if let Some((best, _)) = seeds.first().filter(|_| options.expand > 0) {
        let parent_codes = codes_of(&reader.segments()[best.segment].fingerprint(best.doc)?);
        if !parent_codes.is_empty() {
            let counts = code_counts(reader, &parent_codes, query_code_counts);
            for r in channel_candidates(reader, &counts, allowed) {
                if r != *best && seen.insert(r) {
                    refs.push((r, Origin::Expansion));
                }
            }
        }
    }
    for (seed, _) in seeds.into_iter().take(options.expand) {
        let v = reader.segments()[seed.segment].vector(seed.doc).to_vec();
        // Only the seed's close neighbourhood: a narrower search than the query's own.
        let n = options.min_candidates.max(options.top_k) + 1;
        // Graph only: a sketch scan per seed would cost a pass over every sketch each.
        let (mut vector, _) = vector_candidates(reader, &v, allowed, n, EXPANSION_EF, 0.0);
        vector.retain(|(_, r)| r != seed);
        for r in worth_rescoring(vector, options, &config) {
            if seen.insert(r) {
                refs.push((r, Origin::Expansion));
            }
        }
    }
    Ok(refs)
}
/// One `query text` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextResult {
    /// Rank, from 1.
    pub rank: usize,
    /// BM25 score.
    pub score: f32,
    /// Model id.
    pub model_id: String,
    /// Config `model_type`.
    pub model_type: String,
    /// Parameter count.
    pub parameter_count: u64,
    /// Declared base models.
    pub declared_base_models: Vec<String>,
    /// License.
    pub license: Option<String>,
}

/// Metadata search: the best `limit` live records for a tantivy query string.
pub fn query_text(reader: &IndexReader, text: &str, limit: usize) -> Result<Vec<TextResult>> {
    let mut all = Vec::new();
    for (i, s) in reader.segments().iter().enumerate() {
        for hit in s
            .meta_index()?
            .search(text, limit + reader.deleted(i).len() as usize)?
        {
            let r = DocRef {
                segment: i,
                doc: hit.doc,
            };
            if !reader.is_live(r) {
                continue;
            }
            let a = s.record(hit.doc)?;
            all.push(TextResult {
                rank: 0,
                score: hit.score,
                model_id: a.source.id.to_string(),
                model_type: a.metadata.model_type.to_string(),
                parameter_count: a.source.parameter_count.to_native(),
                declared_base_models: a
                    .metadata
                    .declared_base_models
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                license: a.metadata.license.as_ref().map(|s| s.to_string()),
            });
        }
    }
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.model_id.cmp(&b.model_id))
    });
    all.truncate(limit);
    for (i, r) in all.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fingerprint;
    use crate::writer::{IndexWriter, WriterOptions};

    /// `f` with 32 embedding-channel profiles drawn from `lineage` (64 anchors), in the order `order` gives.
    fn with_profiles(mut f: Fingerprint, lineage: u64, noise: f64, order: &[usize]) -> Fingerprint {
        let e = f.weights.embedding.as_mut().unwrap();
        let anchors = e.anchor_log_norms.len();
        e.channel_ids = order.iter().map(|&c| c as u32).collect();
        e.channel_profiles = order
            .iter()
            .flat_map(|&c| {
                (0..anchors).map(move |a| {
                    let key = (c * 1000 + a) as u64;
                    let v = crate::testutil::normal(lineage, key)
                        + noise * crate::testutil::normal(lineage ^ 0x5eed, key);
                    crate::schema::quantize_sample(v / (1.0 + noise * noise).sqrt())
                })
            })
            .collect();
        f
    }

    /// A model whose residual stream was reordered keeps no weight at its parent's positions, so the composite
    /// vector does not bring its parent; its channel codes do, and only its parent's lineage.
    #[test]
    fn shared_channel_codes_find_a_relative_the_vectors_miss() {
        let dir = tempfile::tempdir().unwrap();
        let order: Vec<usize> = (0..32).collect();
        let batch: Vec<_> = (0..120)
            .map(|i| {
                let lineage = i % 30;
                with_profiles(
                    fingerprint(&format!("m{i}"), lineage, 0.3, 1000 + i),
                    lineage,
                    0.2,
                    &order,
                )
            })
            .collect();
        let mut w = IndexWriter::open(dir.path(), WriterOptions::default()).unwrap();
        w.add_batch(&batch).unwrap();
        w.commit().unwrap();
        let reader = IndexReader::open(dir.path()).unwrap();
        let allowed = allowed_sets(&reader, None).unwrap();

        // Positional weights of a lineage of its own, lineage 7's channels in reverse order.
        let reversed: Vec<usize> = (0..32).rev().collect();
        let permuted = with_profiles(fingerprint("permuted", 900, 0.3, 1), 7, 0.2, &reversed);
        let lookup = |f: &Fingerprint| code_counts(&reader, &codes_of(f), None);
        let found = channel_candidates(&reader, &lookup(&permuted), &allowed);
        let lineages: Vec<u64> = found.iter().map(|r| r.doc as u64 % 30).collect();
        assert!(
            !found.is_empty() && lineages.iter().all(|&l| l == 7),
            "{found:?}"
        );
        assert_eq!(found.len(), 4, "the four lineage-7 records");

        // With one vector candidate and nothing else, the vectors alone would rank an unrelated model; the
        // codes still bring lineage 7, and it is related.
        let options = QueryOptions {
            candidates: 1,
            min_candidates: 1,
            top_k: 10,
            expand: 0,
            arch_candidates: 0,
            ..QueryOptions::default()
        };
        let result = query(&reader, &permuted, &options).unwrap();
        let related: Vec<&Hit> = result
            .hits
            .iter()
            .filter(|h| h.comparison.related == Some(true))
            .collect();
        assert_eq!(
            related.len(),
            4,
            "{:?}",
            result
                .hits
                .iter()
                .map(|h| (&h.model_id, h.origin))
                .collect::<Vec<_>>()
        );
        assert!(related.iter().all(|h| h.origin == Origin::Channels));

        // Profiles of a lineage the index does not hold share no codes with it.
        let stranger = with_profiles(fingerprint("stranger", 901, 0.3, 2), 901, 0.2, &order);
        assert!(channel_candidates(&reader, &lookup(&stranger), &allowed).is_empty());

        // Counts carried over from another model's lookup (as the expansion does from the query to its
        // parent) give the candidates a fresh lookup gives: to a near copy, which reads only the codes that
        // differ, and to an unrelated model, which is counted afresh.
        let near = with_profiles(fingerprint("near", 900, 0.3, 3), 7, 0.25, &reversed);
        for (from, to) in [
            (&permuted, &near),
            (&near, &permuted),
            (&permuted, &stranger),
        ] {
            let carried = code_counts(&reader, &codes_of(to), Some(lookup(from)));
            assert_eq!(
                channel_candidates(&reader, &carried, &allowed),
                channel_candidates(&reader, &lookup(to), &allowed)
            );
        }
    }

    /// The sketch scan's picks join the graph's: with a share of 1 every allowed record is a candidate, so
    /// the result is the exact top n by composite similarity whatever the graph found, each record once,
    /// and a filter still holds.
    #[test]
    fn sketch_candidates_join_the_graph_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let batch: Vec<_> = (0..300)
            .map(|i| fingerprint(&format!("m{i}"), i % 40, 0.5, 1000 + i))
            .collect();
        let options = WriterOptions {
            graph_min_records: 64,
            ..WriterOptions::default()
        };
        let mut w = IndexWriter::open(dir.path(), options).unwrap();
        w.add_batch(&batch).unwrap();
        w.commit().unwrap();
        let reader = IndexReader::open(dir.path()).unwrap();
        let s = &reader.segments()[0];
        assert!(s.graph().is_some() && s.sketch().is_some());
        let q = composite(&batch[7], &reader.manifest().composite);
        let exact = |allow: &dyn Fn(u32) -> bool, n: usize| {
            let mut all: Vec<(i32, u32)> = (0..s.count())
                .filter(|&d| allow(d))
                .map(|d| (crate::composite::dot(&q, s.vector(d)), d))
                .collect();
            all.sort_by(|a, b| b.cmp(a));
            all.truncate(n);
            all.into_iter().map(|(_, d)| d).collect::<Vec<_>>()
        };
        let docs = |v: Vec<(i32, DocRef)>| {
            let mut d: Vec<u32> = v.into_iter().map(|(_, r)| r.doc).collect();
            d.sort();
            d
        };
        let allowed = allowed_sets(&reader, None).unwrap();
        // ef 1: the graph alone returns a greedy local optimum.
        let (full, used_graph) = vector_candidates(&reader, &q, &allowed, 25, 1, 1.0);
        assert!(used_graph);
        let mut want = exact(&|_| true, 25);
        want.sort();
        assert_eq!(docs(full), want);
        // Only even records allowed (most of the segment, so the graph path is still taken).
        let mut even = RoaringBitmap::new();
        even.extend((0..s.count()).filter(|d| d % 2 == 0));
        let (filtered, _) = vector_candidates(&reader, &q, &[Some(even)], 25, 1, 1.0);
        let mut want = exact(&|d| d % 2 == 0, 25);
        want.sort();
        assert_eq!(docs(filtered), want);
        // With two threads the graph search and the sketch scan run side by side: same candidates, same order.
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        for share in [0.05, 0.3] {
            let one = pool(1).install(|| vector_candidates(&reader, &q, &allowed, 25, 4, share));
            let two = pool(2).install(|| vector_candidates(&reader, &q, &allowed, 25, 4, share));
            assert_eq!(one, two);
            assert_eq!(one.0.len(), 25);
        }
    }

    /// A heavy fine-tune's sibling, too weakly correlated with the query to be among its best vector
    /// candidates, is found through their common parent.
    #[test]
    fn expansion_reaches_a_sibling_through_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let root = fingerprint("root", 1, 0.0, 1);
        let light = fingerprint("light", 1, 0.3, 2);
        let query_model = fingerprint("heavy-a", 1, 2.0, 3);
        let sibling = fingerprint("heavy-b", 1, 2.0, 4);
        // The query model itself is not indexed (a new upload being checked).
        let mut batch = vec![root, light, sibling.clone()];
        batch.extend((0..20).map(|i| fingerprint(&format!("other{i}"), 100 + i, 0.0, 50 + i)));
        let mut w = IndexWriter::open(dir.path(), WriterOptions::default()).unwrap();
        w.add_batch(&batch).unwrap();
        w.commit().unwrap();
        let reader = IndexReader::open(dir.path()).unwrap();
        // The sibling is related to the query (weight correlation ≈ 1/(1 + 2²) over thousands of samples).
        assert_eq!(compare(&query_model, &sibling).related, Some(true));

        let options = QueryOptions {
            top_k: 2,
            min_candidates: 2,
            rescore_floor: 0.99,
            arch_candidates: 0,
            expand: 0,
            ..QueryOptions::default()
        };
        let direct = query(&reader, &query_model, &options).unwrap();
        let mut ids: Vec<&str> = direct.hits.iter().map(|h| h.model_id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["light", "root"], "the two best vector candidates");
        assert_eq!(direct.rescored, 2);

        let expanded = query(
            &reader,
            &query_model,
            &QueryOptions {
                expand: 1,
                ..options.clone()
            },
        )
        .unwrap();
        assert_eq!(expanded.rescored, 3, "{:?}", expanded.hits);

        // What the expansion added, seen directly: the sibling, related, found through the root.
        let q = composite(&query_model, &reader.manifest().composite);
        let allowed = allowed_sets(&reader, None).unwrap();
        let (vector, _) = vector_candidates(&reader, &q, &allowed, 100, 192, 0.0);
        let refs: Vec<_> = worth_rescoring(vector, &options, &reader.manifest().composite)
            .map(|r| (r, Origin::Vector))
            .collect();
        let mut seen: HashSet<DocRef> = refs.iter().map(|(r, _)| *r).collect();
        let scored = rescore(&reader, &query_model, &q, &refs, None).unwrap();
        let added = expansion_candidates(
            &reader,
            &scored,
            &allowed,
            &mut seen,
            None,
            &QueryOptions {
                expand: 1,
                ..options
            },
        )
        .unwrap();
        let added = rescore(&reader, &query_model, &q, &added, None).unwrap();
        let added: Vec<_> = added.iter().map(|(_, h)| h).collect();
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(added[0].model_id, "heavy-b");
        assert_eq!(added[0].origin, Origin::Expansion);
        assert_eq!(added[0].comparison.related, Some(true));
    }
}
