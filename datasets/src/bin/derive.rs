//! `derive`: write a derived copy of a Hugging Face snapshot.
//!
//! ```text
//! derive SRC DST OP...      OP = f32 | f16 | bf16 | int8 | int4 | noise=REL | fresh | lora=RANK,REL
//!                                | prune=FRACTION | shards=N | seed=S | drop=L1,L2,.. | permute
//!                                | rescale=SPREAD | vocab-prune=KEEP | vocab-extend=N
//!                                | stack=L1,L2,.. | grow=WIDTH | upcycle=EXPERTS | fuse
//! derive --synth FAMILY DST [seed=S]     FAMILY = llama | gpt2 | bert
//! ```
//! Operations apply in order; `seed=` sets the seed of the ones after it.

use anyhow::{bail, Context, Result};
use datasets::synth::{build, Family, Spec};
use datasets::{derive, grow, residual, vocab_edit, Checkpoint, Storage};
use std::path::Path;

const USAGE: &str = "usage: derive SRC DST OP...
       derive --synth llama|gpt2|bert DST [seed=S]
OP = f32 | f16 | bf16 | int8 | int4 | noise=REL | fresh | lora=RANK,REL | prune=FRACTION | shards=N | seed=S
   | drop=L1,L2,.. | permute | rescale=SPREAD | vocab-prune=KEEP | vocab-extend=N | stack=L1,L2,..
   | grow=WIDTH | upcycle=EXPERTS | fuse   (applied in order; seed= sets the seed of the ones after it)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    if args.len() < 2 {
        bail!("{USAGE}");
    }
    let (mut ckpt, dst, ops) = if args[0] == "--synth" {
        let family = match args[1].as_str() {
            "llama" => Family::Llama,
            "gpt2" => Family::Gpt2,
            "bert" => Family::Bert,
            other => bail!("unknown family {other}"),
        };
        let seed = args
            .iter()
            .find_map(|a| a.strip_prefix("seed="))
            .map(str::parse)
            .transpose()?
            .unwrap_or(1);
        (
            build(&Spec::small(family, seed)),
            args.get(2).context("missing DST")?.clone(),
            &args[3..],
        )
    } else {
        (
            Checkpoint::read(Path::new(&args[0]))?,
            args[1].clone(),
            &args[2..],
        )
    };
    let (mut storage, mut shards, mut seed) = (Storage::F32, 1usize, 1u64);
    for op in ops {
        let (name, value) = op.split_once('=').unwrap_or((op.as_str(), ""));
        match name {
            "f32" => storage = Storage::F32,
            "f16" => storage = Storage::F16,
            "bf16" => storage = Storage::BF16,
            "int8" => derive::int8_per_channel(&mut ckpt),
            "int4" => derive::int4_block(&mut ckpt, 32),
            "noise" => derive::add_noise(&mut ckpt, value.parse()?, seed),
            "fresh" => derive::fresh_init(&mut ckpt, 0.02, seed),
            "lora" => {
                let (rank, rel) = value.split_once(',').context("lora=RANK,REL")?;
                derive::lora_merge(
                    &mut ckpt,
                    &["q_proj", "v_proj", "query", "value", "c_attn"],
                    rank.parse()?,
                    rel.parse()?,
                    seed,
                );
            }
            "prune" => derive::magnitude_prune(&mut ckpt, value.parse()?),
            "drop" => {
                let layers = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<usize>, _>>()?;
                derive::drop_layers(&mut ckpt, &layers)?;
            }
            "permute" => {
                derive::permute_mlp(&mut ckpt, seed)?;
            }
            "rescale" => {
                derive::rescale_norms(&mut ckpt, value.parse()?, seed)?;
            }
            "vocab-prune" => {
                vocab_edit::prune_vocab(&mut ckpt, value.parse()?, seed)?;
            }
            "stack" => {
                let layers = value
                    .split(',')
                    .map(|l| Ok((0, l.trim().parse()?)))
                    .collect::<Result<Vec<(usize, usize)>>>()?;
                ckpt = grow::stack_layers(&[&ckpt], &layers)?;
            }
            "grow" => {
                residual::grow_width(&mut ckpt, value.parse()?, seed)?;
            }
            "upcycle" => {
                grow::upcycle_moe(&mut ckpt, value.parse()?, 0.01, seed)?;
            }
            "fuse" => {
                grow::fuse_projections(&mut ckpt)?;
            }
            "vocab-extend" => {
                vocab_edit::extend_vocab(&mut ckpt, value.parse()?, seed)?;
            }
            "shards" => shards = value.parse()?,
            "seed" => seed = value.parse()?,
            other => bail!("unknown operation {other}"),
        }
    }
    ckpt.write(Path::new(&dst), storage, shards)?;
    Ok(())
}
