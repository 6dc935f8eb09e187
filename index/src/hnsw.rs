//! The HNSW graph of a segment (hnsw_rs over `i8` composite vectors with an inner-product distance): build,
//! dump, load and search.
//!
//! hnsw_rs has no deletion: tombstoned records stay in the graph and are filtered out of its results.
//! Loading a dump rebuilds the graph in memory (seconds per million points), so graphs are loaded by the
//! long-running `serve` process; a one-shot query scans the memory-mapped vectors instead.

use crate::error::{Error, Result};
use hnsw_rs::hnswio::ReloadOptions;
use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use std::path::Path;

/// Graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphParams {
    /// Neighbours per node on upper layers (twice that on layer 0).
    pub max_connections: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
}

impl Default for GraphParams {
    fn default() -> Self {
        GraphParams {
            max_connections: 12,
            ef_construction: 100,
        }
    }
}

/// Layers of the graph: hnsw_rs's maximum, which its dump format requires.
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

/// Convert a graph distance back to the integer inner product.
pub fn distance_to_dot(d: f32) -> i32 {
    (DOT_OFFSET - d).round() as i32
}

/// A segment's graph in memory.
pub struct Graph {
    hnsw: Hnsw<'static, i8, DotI8>,
}

impl Graph {
    /// Build a graph over `count` vectors of `dim` values (record `i` at `vectors[i*dim..]`), in parallel.
    pub fn build(vectors: &[i8], dim: usize, params: GraphParams) -> Graph {
        let count = vectors.len() / dim.max(1);
        let hnsw = Hnsw::new(
            params.max_connections,
            count.max(1),
            MAX_LAYER,
            params.ef_construction,
            DotI8,
        );
        let data: Vec<(&[i8], usize)> = (0..count)
            .map(|i| (&vectors[i * dim..(i + 1) * dim], i))
            .collect();
        hnsw.parallel_insert_slice(&data);
        Graph { hnsw }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write `<dir>/hnsw.hnsw.graph` and `<dir>/hnsw.hnsw.data`.
    pub fn dump(&self, dir: &Path) -> Result<()> {
        self.hnsw
            .file_dump(dir, super::segment::GRAPH_BASENAME)
            .map(|_| ())
            .map_err(|e| Error::Graph {
                path: dir.join(super::segment::GRAPH_BASENAME),
                detail: e.to_string(),
            })
    }

    /// Load a dumped graph. The caller has checked the files' checksums; a panic inside hnsw_rs on damaged
    /// input is still caught and reported as an error.
    pub fn load(dir: &Path) -> Result<Graph> {
        let path = dir.join(super::segment::GRAPH_BASENAME);
        let dir = dir.to_path_buf();
        let loaded = std::panic::catch_unwind(move || {
            // The loaded graph borrows its loader; graphs live as long as the process's index view, so the
            // (small) loader is leaked rather than made self-referential.
            let io: &'static mut HnswIo =
                Box::leak(Box::new(HnswIo::new(&dir, super::segment::GRAPH_BASENAME)));
            // Vectors stay in the memory-mapped dump (clean, reclaimable page cache, like the records) instead
            // of a heap copy per point: 512 bytes per record less resident anonymous memory.
            io.set_options(ReloadOptions::new(true));
            io.load_hnsw::<i8, DotI8>().map_err(|e| e.to_string())
        });
        match loaded {
            Ok(Ok(hnsw)) => Ok(Graph { hnsw }),
            Ok(Err(detail)) => Err(Error::Graph { path, detail }),
            Err(_) => Err(Error::Graph {
                path,
                detail: "graph dump is malformed".into(),
            }),
        }
    }

    /// The `k` nearest records (record number, integer inner product), best first.
    pub fn search(&self, query: &[i8], k: usize, ef: usize) -> Vec<(u32, i32)> {
        self.hnsw
            .search(query, k, ef.max(k))
            .into_iter()
            .map(|n| (n.d_id as u32, distance_to_dot(n.distance)))
            .collect()
    }

    /// Like [`Graph::search`], keeping only records that pass `allow`.
    pub fn search_filtered(
        &self,
        query: &[i8],
        k: usize,
        ef: usize,
        allow: &dyn Fn(usize) -> bool,
    ) -> Vec<(u32, i32)> {
        let filter = |id: &usize| allow(*id);
        self.hnsw
            .search_filter(query, k, ef.max(k), Some(&filter))
            .into_iter()
            .map(|n| (n.d_id as u32, distance_to_dot(n.distance)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_dump_load_search() {
        let dim = 32;
        let n = 300;
        let mut v = Vec::with_capacity(n * dim);
        let mut x = 12345u64;
        for _ in 0..n * dim {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push((x % 200) as i8);
        }
        let g = Graph::build(&v, dim, GraphParams::default());
        assert_eq!(g.len(), n);
        let q = &v[5 * dim..6 * dim];
        assert_eq!(g.search(q, 1, 64)[0].0, 5);
        let dir = tempfile::tempdir().unwrap();
        g.dump(dir.path()).unwrap();
        let h = Graph::load(dir.path()).unwrap();
        assert_eq!(h.search(q, 1, 64)[0].0, 5);
        let only_odd = h.search_filtered(q, 3, 64, &|i| i % 2 == 1);
        assert!(only_odd.iter().all(|(i, _)| i % 2 == 1));
        std::fs::write(dir.path().join("hnsw.hnsw.graph"), b"junk").unwrap();
        assert!(Graph::load(dir.path()).is_err());
    }
}
