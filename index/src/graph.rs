//! The proximity graph of a segment as it is stored and searched: a compact copy of the HNSW graph that
//! hnsw_rs builds ([`crate::hnsw`]), written once at seal and searched in place through a memory map.
//!
//! Why our own layout: hnsw_rs keeps a heap `Arc` per edge and a dozen `Vec`s per point (≈ 3.5 KiB of RAM per
//! record at M = 12), and reloading its dump rebuilds all of that (seconds per million points). This layout is
//! flat `u32` neighbour arrays, ≈ 100 bytes per record, opened in O(1) and paged in by the kernel as searches
//! touch it, so a one-shot CLI query can use the graph as well as a long-running server can.
//!
//! ```text
//! header (24 bytes): count u32 | entry u32 | top_layer u32 | width0 u32 | width u32 | reserved u32
//! levels:            count × u8 (the top layer of each node), zero-padded to a multiple of 4
//! layer 0:           count × width0 u32 neighbour ids (unused slots u32::MAX)
//! layer l = 1..=top: members u32 | member ids (ascending) members × u32 | members × width u32 neighbour ids
//! footer:            the index's 24-byte footer, kind "GRPH"
//! ```
//! All integers little-endian. A damaged file cannot cause an out-of-bounds access: the section sizes are
//! checked at open, and every neighbour id is checked against `count` when it is followed (bad ids are
//! skipped). The CRC is checked by the writer and by `index verify`, as for the records.

use crate::composite::dot;
use crate::error::{Error, Result};
use crate::footer::{self, FooterWriter};
use memmap2::Mmap;
use rustc_hash::FxHashSet;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// File kind tag of the graph file.
pub const GRAPH_KIND: [u8; 4] = *b"GRPH";
/// Graph file name inside a segment directory.
pub const GRAPH_FILE: &str = "graph.bin";
/// Marks an unused neighbour slot.
const EMPTY: u32 = u32::MAX;
const HEADER_LEN: usize = 24;

/// A graph in memory, as the builder hands it over: per node, its neighbour ids on each of its layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Entry node (a node on the top layer).
    pub entry: u32,
    /// `neighbours[node][layer]`: the node's neighbours on that layer (its top layer is `len() - 1`).
    pub neighbours: Vec<Vec<Vec<u32>>>,
    /// Slots per node on layer 0.
    pub width0: usize,
    /// Slots per node on the upper layers.
    pub width: usize,
}

impl Layout {
    /// The highest layer any node reaches.
    pub fn top_layer(&self) -> usize {
        self.neighbours
            .iter()
            .map(|l| l.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
    }

    /// Give layer 0 up to `extra` more slots per node, filled with reverse edges (`u → v` becomes `v → u` as
    /// well) chosen for the nodes fewest others link to. Why: when a node's list is full, hnsw_rs drops its
    /// farthest link to make room for a new one, and a node that loses all its in-links can never be reached
    /// by a search (about 0.2% of the nodes of a 200K graph of composite vectors, whose unrelated models are
    /// all nearly equally far apart). Each node offers its slots to the nodes that list it but that it does
    /// not list, fewest in-links first, then the ones nearest in their own (distance-sorted) lists.
    pub fn add_reverse_edges(&mut self, extra: usize) {
        let count = self.neighbours.len();
        fn layer0(node: &[Vec<u32>]) -> &[u32] {
            node.first().map_or(&[], |l| l)
        }
        let mut in_links = vec![0u32; count];
        for node in &self.neighbours {
            for &v in layer0(node) {
                if let Some(d) = in_links.get_mut(v as usize) {
                    *d += 1;
                }
            }
        }
        // offers[v]: (position of v in u's list, u) for each u that lists v while v does not list u.
        let mut offers: Vec<Vec<(u16, u32)>> = vec![Vec::new(); count];
        for (u, node) in self.neighbours.iter().enumerate() {
            for (at, &v) in layer0(node).iter().enumerate() {
                let Some(back) = self.neighbours.get(v as usize) else {
                    continue;
                };
                if v as usize != u && !layer0(back).contains(&(u as u32)) {
                    offers[v as usize].push((at as u16, u as u32));
                }
            }
        }
        for (v, mut offered) in offers.into_iter().enumerate() {
            if offered.is_empty() {
                continue;
            }
            offered.sort_unstable_by_key(|&(at, u)| (in_links[u as usize], at, u));
            let node = &mut self.neighbours[v];
            if node.is_empty() {
                node.push(Vec::new());
            }
            for &(_, u) in offered.iter().take(extra) {
                node[0].push(u);
                in_links[u as usize] += 1;
            }
        }
        self.width0 += extra;
    }

    /// Write the graph file `dir/graph.bin` and fsync it. Lists longer than the layer's width are cut.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(GRAPH_FILE);
        let io = |e: std::io::Error| Error::io(&path, e);
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut w = FooterWriter::new(BufWriter::with_capacity(1 << 20, file));
        let count = self.neighbours.len();
        let top = self.top_layer();
        let mut header = Vec::with_capacity(HEADER_LEN);
        for v in [count, self.entry as usize, top, self.width0, self.width, 0] {
            header.extend_from_slice(&(v as u32).to_le_bytes());
        }
        w.write_all(&header).map_err(io)?;
        let mut levels: Vec<u8> = self
            .neighbours
            .iter()
            .map(|l| l.len().saturating_sub(1) as u8)
            .collect();
        levels.resize(count.next_multiple_of(4), 0);
        w.write_all(&levels).map_err(io)?;
        let row = |list: Option<&Vec<u32>>, width: usize, out: &mut Vec<u8>| {
            let list = list.map_or(&[][..], |l| &l[..l.len().min(width)]);
            for slot in 0..width {
                out.extend_from_slice(&list.get(slot).copied().unwrap_or(EMPTY).to_le_bytes());
            }
        };
        let mut buf = Vec::with_capacity(self.width0.max(self.width) * 4 * 1024);
        for node in &self.neighbours {
            row(node.first(), self.width0, &mut buf);
            if buf.len() >= 1 << 20 {
                w.write_all(&buf).map_err(io)?;
                buf.clear();
            }
        }
        for layer in 1..=top {
            let members: Vec<u32> = (0..count as u32)
                .filter(|&n| self.neighbours[n as usize].len() > layer)
                .collect();
            buf.extend_from_slice(&(members.len() as u32).to_le_bytes());
            for &m in &members {
                buf.extend_from_slice(&m.to_le_bytes());
            }
            for &m in &members {
                row(self.neighbours[m as usize].get(layer), self.width, &mut buf);
            }
        }
        w.write_all(&buf).map_err(io)?;
        let (w, _) = w.finish(GRAPH_KIND).map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)
    }
}

/// One upper layer: byte offsets of its member ids and neighbour rows in the file.
#[derive(Debug, Clone, Copy)]
struct UpperLayer {
    members: usize,
    ids_at: usize,
    rows_at: usize,
}

/// A memory-mapped graph file.
pub struct GraphFile {
    path: PathBuf,
    map: Mmap,
    count: u32,
    entry: u32,
    width0: usize,
    width: usize,
    layer0_at: usize,
    upper: Vec<UpperLayer>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

impl GraphFile {
    /// Map `dir/graph.bin` and check its footer and section sizes (O(layers), no pass over the data).
    pub fn open(dir: &Path, expected_count: u32) -> Result<GraphFile> {
        let path = dir.join(GRAPH_FILE);
        let map = footer::map(&path)?;
        let (body, _) = footer::payload(&path, &map, GRAPH_KIND)?;
        let bad = |what: String| Error::Graph {
            path: path.clone(),
            detail: what,
        };
        if body.len() < HEADER_LEN {
            return Err(bad(format!("{} bytes: no header", body.len())));
        }
        let field = |i: usize| u32_at(body, i * 4);
        let (count, entry, top, width0, width) = (
            field(0),
            field(1),
            field(2),
            field(3) as usize,
            field(4) as usize,
        );
        if count != expected_count {
            return Err(bad(format!(
                "{count} nodes, segment has {expected_count} records"
            )));
        }
        if (count > 0 && entry >= count) || top > 64 || width0 > 4096 || width > 4096 {
            return Err(bad(format!(
                "implausible header: entry {entry}, top layer {top}, widths {width0}/{width}"
            )));
        }
        let n = count as usize;
        let layer0_at = HEADER_LEN + n.next_multiple_of(4);
        let mut at = layer0_at + n * width0 * 4;
        let mut upper = Vec::with_capacity(top as usize);
        for layer in 1..=top as usize {
            if at + 4 > body.len() {
                return Err(bad(format!("layer {layer} starts beyond the file")));
            }
            let members = u32_at(body, at) as usize;
            if members > n {
                return Err(bad(format!("layer {layer} lists {members} of {n} nodes")));
            }
            let ids_at = at + 4;
            let rows_at = ids_at + members * 4;
            upper.push(UpperLayer {
                members,
                ids_at,
                rows_at,
            });
            at = rows_at + members * width * 4;
        }
        if at != body.len() {
            return Err(bad(format!(
                "sections end at byte {at}, payload has {} bytes",
                body.len()
            )));
        }
        Ok(GraphFile {
            path,
            map,
            count,
            entry,
            width0,
            width,
            layer0_at,
            upper,
        })
    }

    /// Nodes in the graph.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Neighbour ids of `node` on `layer` (valid ids only; empty when `node` is not on that layer).
    fn neighbours(&self, node: u32, layer: usize) -> impl Iterator<Item = u32> + '_ {
        let (row_at, width) = if layer == 0 {
            (
                (node < self.count).then(|| self.layer0_at + node as usize * self.width0 * 4),
                self.width0,
            )
        } else {
            (
                self.upper
                    .get(layer - 1)
                    .and_then(|l| self.member_row(l, node)),
                self.width,
            )
        };
        let count = self.count;
        let row = row_at.map_or(&[][..], |at| &self.map[at..at + width * 4]);
        row.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .take_while(|&id| id != EMPTY)
            .filter(move |&id| id < count)
    }

    /// Byte offset of `node`'s row in an upper layer (binary search over the ascending member ids).
    fn member_row(&self, layer: &UpperLayer, node: u32) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, layer.members);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let id = u32_at(&self.map, layer.ids_at + mid * 4);
            match id.cmp(&node) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(layer.rows_at + mid * self.width * 4),
            }
        }
        None
    }

    /// The `k` records with the largest inner product with `query` among those `allow` accepts (all when
    /// `None`), best first, as (record, inner product). `vectors` holds record `i` at `i*dim..`; `ef` is
    /// the width of the search on layer 0. Refused records are still walked through, just not returned.
    pub fn search(
        &self,
        vectors: &[i8],
        query: &[i8],
        k: usize,
        ef: usize,
        allow: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, i32)> {
        let dim = query.len();
        if self.count == 0 || k == 0 || dim == 0 {
            return Vec::new();
        }
        let vector = |node: u32| vectors.get(node as usize * dim..(node as usize + 1) * dim);
        let score = |node: u32| vector(node).map_or(i32::MIN, |v| dot(query, v));
        // Greedy descent through the upper layers.
        let mut current = self.entry;
        let mut best = score(current);
        for layer in (1..=self.upper.len()).rev() {
            loop {
                let mut moved = false;
                for n in self.neighbours(current, layer) {
                    let s = score(n);
                    if s > best {
                        (current, best) = (n, s);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        // Beam search on layer 0: `frontier` is best-first, `beam` keeps the `ef` best seen (worst on top).
        let ef = ef.max(k);
        let accepts = |n: u32| allow.is_none_or(|f| f(n));
        let mut visited = FxHashSet::default();
        visited.reserve(ef * self.width0);
        visited.insert(current);
        let mut frontier = BinaryHeap::from([(best, current)]);
        let mut beam = BinaryHeap::from([Reverse((best, current))]);
        let mut found: BinaryHeap<Reverse<(i32, u32)>> = BinaryHeap::new();
        if accepts(current) {
            found.push(Reverse((best, current)));
        }
        let mut fresh: Vec<u32> = Vec::with_capacity(self.width0);
        while let Some((s, node)) = frontier.pop() {
            if beam.len() >= ef && beam.peek().is_some_and(|Reverse((worst, _))| s < *worst) {
                break;
            }
            // The unvisited neighbours' vectors are scattered over the file: ask for all of them before
            // scoring the first, so that their cache misses overlap instead of queueing one after another.
            fresh.clear();
            fresh.extend(self.neighbours(node, 0).filter(|&n| visited.insert(n)));
            for v in fresh.iter().filter_map(|&n| vector(n)) {
                crate::prefetch::prefetch_lines(v);
            }
            for &n in &fresh {
                let sn = score(n);
                let worst = beam.peek().map_or(i32::MIN, |Reverse((w, _))| *w);
                if beam.len() < ef || sn > worst {
                    frontier.push((sn, n));
                    beam.push(Reverse((sn, n)));
                    if beam.len() > ef {
                        beam.pop();
                    }
                }
                if accepts(n) {
                    found.push(Reverse((sn, n)));
                    if found.len() > k {
                        found.pop();
                    }
                }
            }
        }
        let mut out: Vec<(u32, i32)> = found.into_iter().map(|Reverse((s, n))| (n, s)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Check the payload CRC in the footer (`index verify`).
    pub fn verify(&self) -> Result<()> {
        footer::verified(&self.path, &self.map, GRAPH_KIND).map(|_| ())
    }

    /// Ask the kernel to read the whole file ahead (a server warming up); errors are ignored, it is advice.
    pub fn prefetch(&self) {
        #[cfg(unix)]
        let _ = self.map.advise(memmap2::Advice::WillNeed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vectors;

    /// Exact top-k by inner product, for comparison.
    fn brute_force(v: &[i8], q: &[i8], k: usize) -> Vec<u32> {
        let mut all: Vec<(i32, u32)> = v
            .chunks_exact(q.len())
            .enumerate()
            .map(|(i, x)| (dot(q, x), i as u32))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    }

    #[test]
    fn written_graph_reopens_and_finds_the_nearest_records() {
        let (n, dim) = (3000, 32);
        let v = random_vectors(n, dim, 7);
        let layout = crate::hnsw::build(&v, dim, crate::hnsw::GraphParams::default()).unwrap();
        assert_eq!(layout.neighbours.len(), n);
        let dir = tempfile::tempdir().unwrap();
        layout.write(dir.path()).unwrap();
        let g = GraphFile::open(dir.path(), n as u32).unwrap();
        assert_eq!(g.len(), n);
        // Every record finds itself first, and the graph's top 10 mostly agree with the exact top 10.
        let mut overlap = 0;
        for probe in (0..n).step_by(97) {
            let q = &v[probe * dim..(probe + 1) * dim];
            let hits = g.search(&v, q, 10, 64, None);
            assert_eq!(hits[0].0 as usize, probe);
            assert_eq!(hits[0].1, dot(q, q));
            assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
            let exact = brute_force(&v, q, 10);
            overlap += hits.iter().filter(|(i, _)| exact.contains(i)).count();
        }
        let probes = n.div_ceil(97);
        assert!(
            overlap as f64 >= 0.9 * (probes * 10) as f64,
            "{overlap} of {}",
            probes * 10
        );
        // A filter keeps only accepted records.
        let q = &v[5 * dim..6 * dim];
        let odd = g.search(&v, q, 5, 64, Some(&|i| i % 2 == 1));
        assert_eq!(odd.len(), 5);
        assert!(odd.iter().all(|(i, _)| i % 2 == 1));
    }

    #[test]
    fn damaged_graph_files_are_refused_or_searched_safely() {
        let (n, dim) = (500, 16);
        let v = random_vectors(n, dim, 11);
        let layout = crate::hnsw::build(&v, dim, crate::hnsw::GraphParams::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        layout.write(dir.path()).unwrap();
        let path = dir.path().join(GRAPH_FILE);
        let good = std::fs::read(&path).unwrap();
        // Wrong record count for the segment.
        assert!(GraphFile::open(dir.path(), n as u32 + 1).is_err());
        // Truncated.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = GraphFile::open(dir.path(), n as u32).err().unwrap();
        assert!(err.to_string().contains("graph.bin"), "{err}");
        // Neighbour ids overwritten with out-of-range values (footer intact): opens, searches without panic.
        let mut bad = good.clone();
        let layer0 = HEADER_LEN + n.next_multiple_of(4);
        for b in &mut bad[layer0..layer0 + 4000] {
            *b = 0xEE;
        }
        std::fs::write(&path, &bad).unwrap();
        let g = GraphFile::open(dir.path(), n as u32).unwrap();
        let hits = g.search(&v, &v[..dim], 10, 32, None);
        assert!(hits.iter().all(|(i, _)| (*i as usize) < n));
        // A header whose sections do not add up.
        let mut bad = good;
        bad[12..16].copy_from_slice(&9u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(GraphFile::open(dir.path(), n as u32).is_err());
    }

    #[test]
    fn reverse_edges_give_orphans_in_links() {
        // Node 3 lists 0 and 1 but nobody lists it: unreachable. Node 0's list is full (width0 2).
        let mut layout = Layout {
            entry: 0,
            neighbours: vec![
                vec![vec![1, 2]],
                vec![vec![0, 2]],
                vec![vec![0, 1]],
                vec![vec![0, 1]],
                vec![vec![0, 3]],
            ],
            width0: 2,
            width: 1,
        };
        layout.add_reverse_edges(1);
        assert_eq!(layout.width0, 3);
        // Existing lists keep their order; node 0 (listed by 3 and 4, lists neither) takes the one with
        // fewer in-links first: 4 (none) rather than 3 (listed by 4).
        assert_eq!(layout.neighbours[0][0], vec![1, 2, 4]);
        assert_eq!(layout.neighbours[1][0], vec![0, 2, 3]);
        assert_eq!(layout.neighbours[3][0], vec![0, 1, 4]);
        for (u, node) in layout.neighbours.iter().enumerate() {
            let l = &node[0];
            assert!(l.len() <= layout.width0 && !l.contains(&(u as u32)));
            let mut d = l.clone();
            d.dedup();
            assert_eq!(d.len(), l.len());
        }
        // Every node is now reachable from the entry.
        let mut seen = [false; 5];
        let mut stack = vec![0usize];
        seen[0] = true;
        while let Some(u) = stack.pop() {
            for &v in &layout.neighbours[u][0] {
                if !std::mem::replace(&mut seen[v as usize], true) {
                    stack.push(v as usize);
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn empty_and_tiny_graphs() {
        let dir = tempfile::tempdir().unwrap();
        Layout::default().write(dir.path()).unwrap();
        let g = GraphFile::open(dir.path(), 0).unwrap();
        assert!(g.search(&[], &[1, 2], 3, 8, None).is_empty());
        let v = random_vectors(3, 8, 3);
        let layout = crate::hnsw::build(&v, 8, crate::hnsw::GraphParams::default()).unwrap();
        layout.write(dir.path()).unwrap();
        let g = GraphFile::open(dir.path(), 3).unwrap();
        let hits = g.search(&v, &v[8..16], 10, 8, None);
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].0, 1);
    }
}
