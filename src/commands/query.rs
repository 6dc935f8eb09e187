//! `provsearch query model|text`: through a running `serve` when there is one, else by opening the index
//! directly (memory-mapped vectors scanned exactly, then exact rescoring).

use super::index::index_dir;
use super::models::{fetch_if_asked, options};
use super::serve::{answer_model, stored_fingerprint, Client, ModelRequest, TextRequest};
use crate::flags::QueryCommand;
use crate::output;
use anyhow::{bail, Context, Result};
use provsearch_index::search::{query_text, QueryOptions};
use provsearch_index::IndexReader;
use provsearch_ingest::fingerprint;
use provsearch_ingest::locate::{file_selector, looks_like_hub_id};
use std::io::Write;
use std::path::Path;

/// Run the command.
pub fn run(command: QueryCommand) -> Result<()> {
    match command {
        QueryCommand::Model {
            model,
            index,
            top_k,
            candidates,
            filter,
            exact,
            sketch_share,
            json,
            csv,
            no_server,
            model_args,
        } => {
            let dir = index_dir(&index)?;
            if let Some(f) = &filter {
                provsearch_index::meta_index::check_query(f)?;
            }
            let mut opts = QueryOptions {
                top_k,
                candidates: candidates.max(top_k),
                filter,
                exact,
                sketch_share,
                ..QueryOptions::default()
            };
            // A path is fingerprinted here; anything else is first looked up as an indexed id.
            let local = Path::new(&model).exists();
            let fingerprint_now = || -> Result<provsearch_index::Fingerprint> {
                fetch_if_asked(&model, &model_args)?;
                Ok(fingerprint(&model, &options(&model_args, None))
                    .with_context(|| format!("cannot fingerprint {model}"))?
                    .fingerprint)
            };
            let client = if no_server {
                None
            } else {
                Client::discover(&dir)
            };
            let mut served = None;
            if let Some(client) = client {
                let mut req = ModelRequest {
                    model_id: (!local).then(|| model.clone()),
                    fingerprint: None,
                    options: opts.clone(),
                };
                if local {
                    let f = fingerprint_now()?;
                    req.options.exclude_id = Some(f.source.id.clone());
                    req.fingerprint = Some(f);
                } else {
                    req.options.exclude_id = Some(model.clone());
                }
                match client.query_model(&req) {
                    Ok(r) => served = Some(r),
                    // The server may not have picked up the latest commit yet: answer locally.
                    Err(e) if !local && e.to_string().contains("is not in the index") => {}
                    Err(e) => return Err(e),
                }
            }
            let via_server = served.is_some();
            let response = match served {
                Some(r) => r,
                None => {
                    let reader = IndexReader::open(&dir)
                        .with_context(|| format!("cannot open index {}", dir.display()))?;
                    let f = if local {
                        fingerprint_now()?
                    } else {
                        match stored_fingerprint(&reader, &model)? {
                            Some(f) => f,
                            None if looks_like_hub_id(&model) || file_selector(&model).is_some() => {
                                fingerprint_now()?
                            }
                            None => bail!(
                                "{model}: not a model id in the index {}, not a path, and not a Hub id",
                                dir.display()
                            ),
                        }
                    };
                    opts.exclude_id = Some(f.source.id.clone());
                    let req = ModelRequest {
                        model_id: None,
                        fingerprint: Some(f),
                        options: opts,
                    };
                    let mut r = answer_model(&reader, req)?;
                    r.query.spec = model.clone();
                    r
                }
            };
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &output::search::query_json(&response.query, &response.result, via_server),
                )?;
                writeln!(out)?;
            } else if csv {
                write!(out, "{}", output::search::query_csv(&response.result))?;
            } else {
                write!(
                    out,
                    "{}",
                    output::search::query_human(&response.query, &response.result, via_server)
                )?;
            }
        }
        QueryCommand::Text {
            query,
            index,
            top_k,
            json,
            csv,
        } => {
            let dir = index_dir(&index)?;
            provsearch_index::meta_index::check_query(&query)?;
            let results = match Client::discover(&dir) {
                Some(c) => c.query_text(&TextRequest {
                    query: query.clone(),
                    top_k,
                })?,
                None => {
                    let reader = IndexReader::open(&dir)
                        .with_context(|| format!("cannot open index {}", dir.display()))?;
                    query_text(&reader, &query, top_k)?
                }
            };
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &output::search::text_json(&query, &results),
                )?;
                writeln!(out)?;
            } else if csv {
                write!(out, "{}", output::search::text_csv(&results))?;
            } else {
                write!(out, "{}", output::search::text_human(&results))?;
            }
        }
    }
    Ok(())
}
