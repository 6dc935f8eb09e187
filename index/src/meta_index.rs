//! The metadata index of a segment (tantivy, in `segments/<id>/meta/`): model id, organisation, model type,
//! architectures, license, tags, declared base models, parameter count, format, hashes and file digests, for
//! text queries, filters (→ roaring bitmaps of record numbers) and exact look-ups.

use crate::error::{Error, Result};
use crate::schema::Fingerprint;
use roaring::RoaringBitmap;
use std::path::{Path, PathBuf};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::query::{QueryParser, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument, Term};

/// Memory budget of the segment's tantivy writer.
const WRITER_BUDGET: usize = 32_000_000;

/// Field handles of the metadata schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Exact model id.
    pub id: Field,
    /// Tokenised model id (`org`, `name` words).
    pub id_text: Field,
    /// Organisation (the part before `/`).
    pub org: Field,
    /// Config `model_type`.
    pub model_type: Field,
    /// Config `architectures` (one value each).
    pub architectures: Field,
    /// Card license.
    pub license: Field,
    /// Card tags.
    pub tags: Field,
    /// Declared base models (exact).
    pub base_model: Field,
    /// Parameter count.
    pub params: Field,
    /// `safetensors` or `gguf`.
    pub format: Field,
    /// Architecture hash.
    pub arch_hash: Field,
    /// Family hash.
    pub family_hash: Field,
    /// Content digest and every file digest (BLAKE3 and, when known, SHA-256).
    pub digest: Field,
    /// Revision.
    pub revision: Field,
    /// Record number inside the segment.
    pub doc: Field,
}

/// The schema and its field handles.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        id_text: b.add_text_field("id_text", TEXT),
        org: b.add_text_field("org", STRING),
        model_type: b.add_text_field("model_type", STRING),
        architectures: b.add_text_field("architectures", STRING),
        license: b.add_text_field("license", STRING),
        tags: b.add_text_field("tags", STRING),
        base_model: b.add_text_field("base_model", STRING),
        params: b.add_u64_field("params", INDEXED | FAST),
        format: b.add_text_field("format", STRING | FAST),
        arch_hash: b.add_text_field("arch_hash", STRING),
        family_hash: b.add_text_field("family_hash", STRING),
        digest: b.add_text_field("digest", STRING),
        revision: b.add_text_field("revision", STRING),
        doc: b.add_u64_field("doc", INDEXED | FAST | STORED),
    };
    (b.build(), fields)
}

/// Writes the metadata index of a new segment.
pub struct MetaWriter {
    dir: PathBuf,
    writer: IndexWriter<TantivyDocument>,
    fields: Fields,
}

fn id_words(id: &str) -> String {
    id.replace(['/', '-', '_', '.'], " ")
}

impl MetaWriter {
    /// Create the index in `dir` (which must not exist yet or be empty).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(dir, schema).map_err(|e| Error::meta(dir, e))?;
        let writer = index
            .writer_with_num_threads(1, WRITER_BUDGET)
            .map_err(|e| Error::meta(dir, e))?;
        Ok(MetaWriter {
            dir: dir.to_path_buf(),
            writer,
            fields,
        })
    }

    /// Add the metadata of record `doc`.
    pub fn add(&mut self, doc: u64, f: &Fingerprint) -> Result<()> {
        let x = &self.fields;
        let m = &f.metadata;
        let mut d = TantivyDocument::default();
        d.add_text(x.id, &f.source.id);
        d.add_text(x.id_text, id_words(&f.source.id));
        if let Some((org, _)) = f.source.id.split_once('/') {
            d.add_text(x.org, org);
        }
        d.add_text(x.model_type, &m.model_type);
        for a in &m.architectures {
            d.add_text(x.architectures, a);
        }
        if let Some(l) = &m.license {
            d.add_text(x.license, l);
        }
        for t in &m.tags {
            d.add_text(x.tags, t);
        }
        for b in &m.declared_base_models {
            d.add_text(x.base_model, b);
        }
        d.add_u64(x.params, f.source.parameter_count);
        d.add_text(
            x.format,
            match f.source.format {
                crate::schema::SourceFormat::Safetensors => "safetensors",
                crate::schema::SourceFormat::Gguf => "gguf",
            },
        );
        if !m.arch_hash.is_empty() {
            d.add_text(x.arch_hash, &m.arch_hash);
        }
        if !m.family_hash.is_empty() {
            d.add_text(x.family_hash, &m.family_hash);
        }
        if !f.source.content_digest.is_empty() {
            d.add_text(x.digest, &f.source.content_digest);
        }
        for file in &f.source.files {
            for digest in [&file.blake3, &file.sha256] {
                if !digest.is_empty() {
                    d.add_text(x.digest, digest);
                }
            }
        }
        if let Some(r) = &f.source.revision {
            d.add_text(x.revision, r);
        }
        d.add_u64(x.doc, doc);
        self.writer
            .add_document(d)
            .map_err(|e| Error::meta(&self.dir, e))?;
        Ok(())
    }

    /// Commit and wait for tantivy's merges, so the directory holds only final files.
    pub fn finish(mut self) -> Result<()> {
        self.writer
            .commit()
            .map_err(|e| Error::meta(&self.dir, e))?;
        self.writer
            .wait_merging_threads()
            .map_err(|e| Error::meta(&self.dir, e))?;
        Ok(())
    }
}

/// A segment's metadata index, open for queries.
pub struct MetaReader {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

/// One text-query hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextHit {
    /// Record number in the segment.
    pub doc: u32,
    /// BM25 score.
    pub score: f32,
}

impl MetaReader {
    /// Open a segment's metadata index.
    pub fn open(dir: &Path) -> Result<Self> {
        let index = Index::open_in_dir(dir).map_err(|e| Error::meta(dir, e))?;
        let reader = index.reader().map_err(|e| Error::meta(dir, e))?;
        let (_, fields) = schema();
        Ok(MetaReader {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
        })
    }

    /// The field handles.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    fn parser(&self) -> QueryParser {
        let x = &self.fields;
        let mut p = QueryParser::for_index(
            &self.index,
            vec![
                x.id_text,
                x.id,
                x.org,
                x.model_type,
                x.architectures,
                x.tags,
                x.base_model,
                x.license,
            ],
        );
        p.set_conjunction_by_default();
        p
    }

    fn docs_of(&self, query: &dyn tantivy::query::Query) -> Result<RoaringBitmap> {
        self.reader
            .searcher()
            .search(query, &RecordNumbers)
            .map_err(|e| Error::meta(&self.dir, e))
    }

    /// Records matching a tantivy query string (the filter language), as a bitmap of record numbers.
    pub fn filter(&self, query: &str) -> Result<RoaringBitmap> {
        let q = self.parser().parse_query(query).map_err(|e| Error::Query {
            query: query.to_string(),
            detail: e.to_string(),
        })?;
        self.docs_of(q.as_ref())
    }

    /// Records whose `field` holds exactly `value`.
    pub fn exact(&self, field: Field, value: &str) -> Result<RoaringBitmap> {
        let q = TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        );
        self.docs_of(&q)
    }

    /// Like [`MetaReader::exact`], or `None` when more than `limit` records match (counted without
    /// collecting them).
    pub fn exact_at_most(
        &self,
        field: Field,
        value: &str,
        limit: usize,
    ) -> Result<Option<RoaringBitmap>> {
        let q = TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        );
        let n = self
            .reader
            .searcher()
            .search(&q, &Count)
            .map_err(|e| Error::meta(&self.dir, e))?;
        if n > limit {
            return Ok(None);
        }
        self.docs_of(&q).map(Some)
    }

    /// The best `limit` records for a text query, by BM25.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<TextHit>> {
        let q = self.parser().parse_query(query).map_err(|e| Error::Query {
            query: query.to_string(),
            detail: e.to_string(),
        })?;
        let searcher = self.reader.searcher();
        let top = searcher
            .search(
                q.as_ref(),
                &TopDocs::with_limit(limit.max(1)).order_by_score(),
            )
            .map_err(|e| Error::meta(&self.dir, e))?;
        // Each tantivy segment's record-number column is opened once, at its first hit.
        let mut columns: Vec<Option<Column<u64>>> = vec![None; searcher.segment_readers().len()];
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let slot = &mut columns[addr.segment_ord as usize];
            if slot.is_none() {
                let column = searcher
                    .segment_reader(addr.segment_ord)
                    .fast_fields()
                    .u64("doc")
                    .map_err(|e| Error::meta(&self.dir, e))?;
                *slot = Some(column);
            }
            if let Some(d) = slot.as_ref().and_then(|c| c.first(addr.doc_id)) {
                out.push(TextHit {
                    doc: d as u32,
                    score,
                });
            }
        }
        Ok(out)
    }
}

/// Validate a filter's syntax without an index (for early, clear errors).
pub fn check_query(query: &str) -> Result<()> {
    let (schema, _) = schema();
    let index = Index::create_in_ram(schema);
    let (_, x) = crate::meta_index::schema();
    let p = QueryParser::for_index(&index, vec![x.id_text, x.id, x.model_type]);
    p.parse_query(query).map(|_| ()).map_err(|e| Error::Query {
        query: query.to_string(),
        detail: e.to_string(),
    })
}

/// A tantivy collector of the matching documents' record numbers (their `doc` fast field), as a bitmap. Each
/// tantivy segment's column is opened once, not once per hit (a broad `--filter` matches most of an index).
struct RecordNumbers;

impl Collector for RecordNumbers {
    type Fruit = RoaringBitmap;
    type Child = SegmentRecordNumbers;

    fn for_segment(
        &self,
        _segment_ord: tantivy::SegmentOrdinal,
        segment: &tantivy::SegmentReader,
    ) -> tantivy::Result<SegmentRecordNumbers> {
        Ok(SegmentRecordNumbers {
            column: segment.fast_fields().u64("doc")?,
            records: RoaringBitmap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        Ok(fruits
            .into_iter()
            .fold(RoaringBitmap::new(), |all, b| all | b))
    }
}

struct SegmentRecordNumbers {
    column: Column<u64>,
    records: RoaringBitmap,
}

impl SegmentCollector for SegmentRecordNumbers {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: tantivy::DocId, _score: tantivy::Score) {
        if let Some(record) = self.column.first(doc) {
            self.records.insert(record as u32);
        }
    }

    fn harvest(self) -> RoaringBitmap {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_exact_lookups_give_the_record_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetaWriter::create(dir.path()).unwrap();
        // Record numbers that are not tantivy's document ids.
        let record = |i: u32| 7 * i + 3;
        for i in 0..60 {
            let mut f =
                crate::testutil::fingerprint(&format!("org/m-{i}"), i as u64, 0.0, i as u64);
            f.metadata.model_type = if i % 3 == 0 { "llama" } else { "bert" }.into();
            w.add(record(i) as u64, &f).unwrap();
            if i % 20 == 19 {
                // Several tantivy segments, each with its own record-number column.
                w.writer.commit().unwrap();
            }
        }
        w.finish().unwrap();
        let r = MetaReader::open(dir.path()).unwrap();
        assert!(r.reader.searcher().segment_readers().len() > 1);
        let llamas: RoaringBitmap = (0..60).filter(|i| i % 3 == 0).map(record).collect();
        assert_eq!(r.filter("model_type:llama").unwrap(), llamas);
        assert_eq!(
            r.filter("model_type:llama OR model_type:bert")
                .unwrap()
                .len(),
            60
        );
        assert!(r.filter("model_type:gpt2").unwrap().is_empty());
        let id = r.fields().id;
        assert_eq!(
            r.exact(id, "org/m-5").unwrap(),
            RoaringBitmap::from_iter([record(5)])
        );
        assert_eq!(
            r.exact_at_most(id, "org/m-5", 1).unwrap(),
            Some(RoaringBitmap::from_iter([record(5)]))
        );
        let model_type = r.fields().model_type;
        assert_eq!(r.exact_at_most(model_type, "llama", 19).unwrap(), None);
        assert_eq!(
            r.exact_at_most(model_type, "llama", 20).unwrap(),
            Some(llamas.clone())
        );
        let ranked: RoaringBitmap = r
            .search("model_type:llama", 100)
            .unwrap()
            .iter()
            .map(|h| h.doc)
            .collect();
        assert_eq!(ranked, llamas);
        let top: Vec<u32> = r
            .search("id:\"org/m-45\"", 3)
            .unwrap()
            .iter()
            .map(|h| h.doc)
            .collect();
        assert_eq!(top, vec![record(45)]);
    }
}
