//! Building a segment's proximity graph with hnsw_rs (over `i8` composite vectors with an inner-product
//! distance), handed over as a [`Layout`] that [`crate::graph`] stores and searches.
//!
//! hnsw_rs is used for construction only: its in-memory structure costs ≈ 3.5 KiB per point and its dump
//! takes seconds per million points to reload, so queries run on the compact memory-mapped copy instead.
//! hnsw_rs has no deletion: tombstoned records stay in the graph and are filtered out of its results.

use crate::graph::Layout;
use hnsw_rs::prelude::{Distance, Hnsw};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphParams {
    /// Neighbours per node on upper layers (twice that on layer 0).
    pub max_connections: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Extra layer-0 slots per node for reverse edges added at seal ([`Layout::add_reverse_edges`]).
    pub reverse_slots: usize,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            max_connections: 12,
            ef_construction: 100,
            reverse_slots: 8,
        }
    }
}

/// Layers of the graph (hnsw_rs's maximum; with M ≥ 8 a million points reach about layer 7).
const MAX_LAYER: usize = 16;

/// Offset that keeps the distance positive: `|dot| ≤ 512 · 127² < 2²³`.
const DOT_OFFSET: f32 = 8_388_608.0;

/// Inner-product "distance" on `i8` vectors: `2²³ − a·b` (smaller is more similar, never negative for
/// dimension ≤ 512, exact in `f32`).
#[derive(Debug, Default, Clone, Copy)]
pub struct DotI8;

impl Distance<i8> for DotI8 {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        DOT_OFFSET - crate::composite::dot(a, b) as f32
    }
}

/// Build the graph over `count` vectors of `dim` values (record `i` at `vectors[i*dim..]`), inserting on
/// every core, and return its layout (see [`Builder::finish`] for the error).
pub fn build(
    vectors: &[i8],
    dim: usize,
    params: GraphParams,
) -> std::result::Result<Layout, String> {
    let mut b = Builder::new(params, vectors.len() / dim.max(1));
    for v in vectors.chunks_exact(dim.max(1)) {
        b.push(v);
    }
    b.finish()
}

/// Records handed to the inserting thread at a time: large enough for `parallel_insert` to keep every core
/// busy, small enough that the graph never lags far behind the records.
const INSERT_BATCH: usize = 2048;

type SharedHnsw = Arc<Hnsw<'static, i8, DotI8>>;
/// Vectors with their record numbers, as sent to the inserting thread.
type Batch = Vec<(Vec<i8>, usize)>;

/// Builds a graph while its records are still being written: vectors go to a background thread that inserts
/// them in batches (each batch on every core), so the graph is nearly complete when the segment is sealed
/// instead of being built from scratch then. Record numbers are the order of [`Builder::push`].
pub struct Builder {
    params: GraphParams,
    hnsw: SharedHnsw,
    batch: Batch,
    pushed: usize,
    sender: Option<SyncSender<Batch>>,
    inserter: Option<JoinHandle<()>>,
}

impl Builder {
    /// A new, empty graph; `expected` (a size hint) only pre-sizes hnsw_rs's tables.
    pub fn new(params: GraphParams, expected: usize) -> Builder {
        let hnsw: SharedHnsw = Arc::new(Hnsw::new(
            params.max_connections,
            expected.max(1),
            MAX_LAYER,
            params.ef_construction,
            DotI8,
        ));
        // Bounded: when inserting falls behind, the writer waits instead of queueing every vector.
        let (sender, receiver) = sync_channel::<Batch>(4);
        let graph = Arc::clone(&hnsw);
        let inserter = std::thread::spawn(move || {
            for batch in receiver {
                let refs: Vec<(&Vec<i8>, usize)> = batch.iter().map(|(v, i)| (v, *i)).collect();
                graph.parallel_insert(&refs);
            }
        });
        Builder {
            params,
            hnsw,
            batch: Vec::with_capacity(INSERT_BATCH),
            pushed: 0,
            sender: Some(sender),
            inserter: Some(inserter),
        }
    }

    /// Add the next record's vector.
    pub fn push(&mut self, vector: &[i8]) {
        self.batch.push((vector.to_vec(), self.pushed));
        self.pushed += 1;
        if self.batch.len() >= INSERT_BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(INSERT_BATCH));
        if let Some(sender) = &self.sender {
            // A send fails only if the inserting thread died; `finish` reports that.
            let _ = sender.send(batch);
        }
    }

    /// Wait for every insertion and return the layout; an error describes a failure of the inserting thread.
    pub fn finish(mut self) -> std::result::Result<Layout, String> {
        self.send();
        self.sender = None;
        if let Some(t) = self.inserter.take() {
            t.join()
                .map_err(|_| "hnsw_rs panicked while inserting".to_string())?;
        }
        if self.hnsw.get_nb_point() != self.pushed {
            return Err(format!(
                "{} of {} vectors inserted",
                self.hnsw.get_nb_point(),
                self.pushed
            ));
        }
        Ok(layout_of(&self.hnsw, self.pushed, self.params))
    }
}

/// Copy hnsw_rs's adjacency into a [`Layout`] indexed by record number.
fn layout_of(hnsw: &Hnsw<'_, i8, DotI8>, count: usize, params: GraphParams) -> Layout {
    let mut neighbours = vec![Vec::new(); count];
    let points = hnsw.get_point_indexation();
    let top = points.get_max_level_observed() as usize;
    // hnsw_rs's entry point is a node of the top layer; any node of that layer serves (the layer is tiny).
    let entry = points
        .get_layer_iterator(top)
        .next()
        .map_or(0, |p| p.get_origin_id() as u32);
    for point in points {
        let Some(slot) = neighbours.get_mut(point.get_origin_id()) else {
            continue;
        };
        *slot = point
            .get_neighborhood_id()
            .into_iter()
            .take(point.get_point_id().0 as usize + 1)
            .map(|layer| layer.iter().map(|n| n.d_id as u32).collect())
            .collect();
    }
    let mut layout = Layout {
        entry,
        neighbours,
        width0: 2 * params.max_connections,
        width: params.max_connections,
    };
    layout.add_reverse_edges(params.reverse_slots);
    layout
}
