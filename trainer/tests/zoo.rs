//! Trainer contracts: every parameter learns, runs are bit-reproducible, and
//! the derivation mechanisms produce loadable Hugging Face snapshots.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use provsearch_trainer::checkpoint::load_snapshot;
use provsearch_trainer::model::{self, Arch, ModelConfig};
use provsearch_trainer::rng::Rng;
use provsearch_trainer::train::{self, Spec};

/// The largest absolute difference between two tensors of the same shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn tiny_config(arch: Arch) -> ModelConfig {
    ModelConfig {
        arch,
        vocab_size: 97,
        hidden: 16,
        layers: 2,
        heads: 2,
        head_dim: None,
        intermediate: 40,
        max_positions: 32,
        eps: 1e-5,
        rope_theta: 10000.0,
        bos_token_id: 0,
        eos_token_id: 0,
    }
}

fn random_ids(rng: &mut Rng, b: usize, t: usize, v: usize) -> Tensor {
    let ids: Vec<u32> = (0..b * t).map(|_| rng.below(v) as u32).collect();
    Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap()
}

/// Backprop `loss` and assert every var got a finite, non-zero gradient.
fn assert_all_grads(vars: &std::collections::BTreeMap<String, candle_core::Var>, loss: &Tensor) {
    let grads = loss.backward().unwrap();
    for (name, v) in vars {
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let s = g
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(s.is_finite() && s > 0.0, "{name}: gradient sum |g| = {s}");
    }
}

#[test]
fn every_parameter_gets_a_gradient() {
    for arch in [Arch::Llama, Arch::Gpt2] {
        let cfg = tiny_config(arch);
        let w = model::init_weights(&cfg, 3, &Device::Cpu).unwrap();
        let vars = model::to_vars(&w).unwrap();
        assert_eq!(vars.len(), cfg.tensor_specs().len());
        let mut rng = Rng::new(5, 0);
        let x = random_ids(&mut rng, 3, 12, cfg.vocab_size);
        let y = random_ids(&mut rng, 3, 12, cfg.vocab_size);
        let logits = model::forward(&cfg, &model::var_weights(&vars), &x).unwrap();
        assert_eq!(logits.dims(), &[3, 12, cfg.vocab_size]);
        assert_all_grads(&vars, &model::cross_entropy(&logits, &y).unwrap());
    }
}

#[test]
fn distillation_loss_reaches_every_student_parameter() {
    let teacher_cfg = tiny_config(Arch::Llama);
    let teacher = model::init_weights(&teacher_cfg, 11, &Device::Cpu).unwrap();
    let student_cfg = ModelConfig {
        hidden: 8,
        layers: 1,
        intermediate: 24,
        ..teacher_cfg.clone()
    };
    let vars =
        model::to_vars(&model::init_weights(&student_cfg, 12, &Device::Cpu).unwrap()).unwrap();
    let mut rng = Rng::new(6, 0);
    let x = random_ids(&mut rng, 2, 10, teacher_cfg.vocab_size);
    let s = model::forward(&student_cfg, &model::var_weights(&vars), &x).unwrap();
    let t = model::forward(&teacher_cfg, &teacher, &x).unwrap();
    let kl = model::distill_kl(&s, &t, 2.0).unwrap();
    assert!(kl.to_scalar::<f32>().unwrap() > 0.0);
    assert_all_grads(&vars, &kl);
    // KL of a distribution with itself is zero.
    let zero = model::distill_kl(&t, &t, 2.0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(zero.abs() < 1e-5, "{zero}");
}

#[test]
fn causal_attention_ignores_the_future() {
    for arch in [Arch::Llama, Arch::Gpt2] {
        let cfg = tiny_config(arch);
        let w = model::init_weights(&cfg, 4, &Device::Cpu).unwrap();
        let a = Tensor::new(&[[1u32, 2, 3, 4, 5, 6]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[1u32, 2, 3, 9, 9, 9]], &Device::Cpu).unwrap();
        let la = model::forward(&cfg, &w, &a)
            .unwrap()
            .narrow(1, 0, 3)
            .unwrap();
        let lb = model::forward(&cfg, &w, &b)
            .unwrap()
            .narrow(1, 0, 3)
            .unwrap();
        let d = max_abs_diff(&la, &lb);
        assert!(d < 1e-5, "{arch:?}: prefix logits changed by {d}");
    }
}

/// A small deterministic English-like corpus.
fn write_corpus(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let base = [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "then", "a", "king",
        "said", "unto", "them", "program", "hacker", "kernel", "bug", "fortune", "cookie", "light",
        "darkness", "waters", "earth",
    ];
    // A second vocabulary, so that a tokenizer extension has something to learn.
    let other = [
        "segmentation",
        "fault",
        "overflow",
        "compiler",
        "thou",
        "hast",
        "wherefore",
        "dictionary",
        "definition",
        "jargon",
        "mainframe",
        "daemon",
        "the",
        "a",
        "of",
    ];
    let words: &[&str] = if seed.is_multiple_of(2) {
        &other
    } else {
        &base
    };
    let mut rng = Rng::new(seed, 9);
    let mut s = String::new();
    for _ in 0..4000 {
        let n = 3 + rng.below(9);
        let line: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
        s.push_str(&line.join(" "));
        s.push_str(".\n");
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

fn spec(dir: &Path, name: &str, data: &Path, seed: u64) -> Spec {
    Spec {
        name: name.into(),
        family: "T".into(),
        mechanism: "test".into(),
        description: "test model".into(),
        hub_prefix: "provsearch-zoo".into(),
        relation: None,
        independent_of: vec![],
        init: None,
        teacher: None,
        temperature: 2.0,
        drop_layers: vec![],
        prune_mlp: None,
        prune_hidden: None,
        grow_hidden: None,
        stack_layers: None,
        arch: Arch::Llama,
        hidden: 16,
        layers: 2,
        heads: 2,
        intermediate: None,
        max_positions: 32,
        tokenizer: None,
        train_tokenizer_on: vec![data.to_path_buf()],
        tokenizer_vocab: 300,
        extend_tokenizer_on: vec![],
        extend_tokens: 0,
        data: vec![data.to_path_buf()],
        seed,
        steps: 12,
        batch: 4,
        seq: 16,
        lr: 3e-3,
        warmup: 3,
        weight_decay: 0.01,
        clip: 1.0,
        log_every: 0,
        out: dir.join(name),
        record_dir: None,
        command: "test".into(),
    }
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn same_seed_gives_byte_identical_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_corpus(tmp.path(), "corpus.txt", 1);
    for arch in [Arch::Llama, Arch::Gpt2] {
        let mut a = spec(tmp.path(), "a", &data, 42);
        a.arch = arch;
        let mut b = a.clone();
        b.name = "b".into();
        b.out = tmp.path().join("b");
        let mut c = a.clone();
        c.name = "c".into();
        c.out = tmp.path().join("c");
        c.seed = 43;
        let ra = train::run(&a).unwrap();
        let rb = train::run(&b).unwrap();
        train::run(&c).unwrap();
        assert_eq!(ra.final_loss, rb.final_loss);
        for f in ["model.safetensors", "tokenizer.json", "config.json"] {
            assert!(
                read(a.out.join(f)) == read(b.out.join(f)),
                "{arch:?}: {f} differs between two runs with one seed"
            );
        }
        assert!(
            read(a.out.join("model.safetensors")) != read(c.out.join("model.safetensors")),
            "seed has no effect"
        );
        assert!(
            read(a.out.join("tokenizer.json")) == read(c.out.join("tokenizer.json")),
            "tokenizer training is not deterministic"
        );
    }
}

#[test]
fn snapshot_is_f16_safetensors_with_pt_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_corpus(tmp.path(), "corpus.txt", 2);
    for arch in [Arch::Llama, Arch::Gpt2] {
        let mut s = spec(tmp.path(), "m", &data, 1);
        s.arch = arch;
        s.steps = 2;
        train::run(&s).unwrap();
        let bytes = read(s.out.join("model.safetensors"));
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            meta.metadata()
                .as_ref()
                .and_then(|m| m.get("format"))
                .map(String::as_str),
            Some("pt")
        );
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            assert_eq!(view.dtype(), safetensors::Dtype::F16, "{name}");
        }
        let cfg: serde_json::Value =
            serde_json::from_slice(&read(s.out.join("config.json"))).unwrap();
        match arch {
            Arch::Llama => {
                assert_eq!(cfg["model_type"], "llama");
                assert!(st.tensor("lm_head.weight").is_ok());
                assert_eq!(
                    st.tensor("model.layers.1.mlp.down_proj.weight")
                        .unwrap()
                        .shape(),
                    &[16, 48]
                );
            }
            Arch::Gpt2 => {
                assert_eq!(cfg["model_type"], "gpt2");
                // Conv1D layout is (in, out).
                assert_eq!(
                    st.tensor("transformer.h.0.attn.c_attn.weight")
                        .unwrap()
                        .shape(),
                    &[16, 48]
                );
                assert_eq!(
                    st.tensor("transformer.h.1.mlp.c_proj.weight")
                        .unwrap()
                        .shape(),
                    &[64, 16]
                );
                assert!(st.tensor("lm_head.weight").is_err(), "GPT-2 head is tied");
            }
        }
        let card = String::from_utf8(read(s.out.join("README.md"))).unwrap();
        assert!(card.starts_with("---\n") && !card.contains("base_model:"));
        let loaded = load_snapshot(&s.out, &Device::Cpu).unwrap();
        assert_eq!(
            loaded.weights[loaded.config.embedding_names().0].dtype(),
            DType::F32
        );
    }
}

#[test]
fn derivations_produce_loadable_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_corpus(tmp.path(), "corpus.txt", 3);
    let other = write_corpus(tmp.path(), "other.txt", 4);
    let mut base = spec(tmp.path(), "base", &data, 7);
    base.layers = 3;
    base.steps = 4;
    train::run(&base).unwrap();
    let parent = load_snapshot(&base.out, &Device::Cpu).unwrap();

    let derived = |name: &str| {
        let mut s = spec(tmp.path(), name, &other, 8);
        s.train_tokenizer_on = vec![];
        s.init = Some(base.out.clone());
        s.steps = 3;
        s
    };
    // Vocabulary extension: old rows are kept, new ids are appended.
    let mut v = derived("vocab");
    v.extend_tokenizer_on = vec![other.clone()];
    v.extend_tokens = 5;
    v.lr = 0.0;
    v.weight_decay = 0.0;
    train::run(&v).unwrap();
    let ext = load_snapshot(&v.out, &Device::Cpu).unwrap();
    assert_eq!(ext.config.vocab_size, parent.config.vocab_size + 5);
    let old = parent.weights["model.embed_tokens.weight"].clone();
    let kept = ext.weights["model.embed_tokens.weight"]
        .narrow(0, 0, parent.config.vocab_size)
        .unwrap();
    let d = max_abs_diff(&old, &kept);
    assert!(
        d == 0.0,
        "lr=0 vocabulary extension changed old rows by {d}"
    );
    let tk = provsearch_trainer::tok::load(&v.out.join("tokenizer.json")).unwrap();
    assert_eq!(tk.get_vocab_size(true), ext.config.vocab_size);

    // Depth and width pruning.
    let mut p = derived("pruned");
    p.drop_layers = vec![1];
    p.prune_mlp = Some(32);
    train::run(&p).unwrap();
    let pr = load_snapshot(&p.out, &Device::Cpu).unwrap();
    assert_eq!((pr.config.layers, pr.config.intermediate), (2, 32));

    // Distillation: fresh student, teacher's tokenizer, teacher named in the card.
    let mut s = derived("student");
    s.init = None;
    s.teacher = Some(base.out.clone());
    s.layers = 1;
    s.hidden = 8;
    train::run(&s).unwrap();
    let card = String::from_utf8(read(s.out.join("README.md"))).unwrap();
    assert!(card.contains("base_model: provsearch-zoo/base"), "{card}");
    assert!(read(s.out.join("tokenizer.json")) == read(base.out.join("tokenizer.json")));
}

#[test]
fn residual_width_pruning_keeps_the_most_important_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_corpus(tmp.path(), "corpus.txt", 5);
    let mut base = spec(tmp.path(), "base", &data, 9);
    base.steps = 6;
    train::run(&base).unwrap();
    let parent = load_snapshot(&base.out, &Device::Cpu).unwrap();
    let (h, heads) = (parent.config.hidden, parent.config.heads);
    assert_eq!((h, heads), (16, 2));

    // The one-token residual streams are those of the real forward pass: the
    // stream after the first l layers, through model.norm and lm_head, gives
    // the logits of the model truncated to l layers.
    let pw = &parent.weights;
    let res = train::one_token_residuals(&parent.config, pw).unwrap();
    assert_eq!(res.len(), 2 * parent.config.layers + 1);
    let v = parent.config.vocab_size;
    let ids = Tensor::arange(0u32, v as u32, &Device::Cpu)
        .unwrap()
        .reshape((v, 1))
        .unwrap();
    for l in 0..=parent.config.layers {
        let cfg_l = ModelConfig {
            layers: l,
            ..parent.config.clone()
        };
        let w_l: model::Weights = pw
            .iter()
            .filter(|(n, _)| {
                (l..parent.config.layers).all(|d| !n.starts_with(&format!("model.layers.{d}.")))
            })
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        let want = model::forward(&cfg_l, &w_l, &ids)
            .unwrap()
            .reshape((v, v))
            .unwrap();
        let x = &res[2 * l];
        let ms = x.sqr().unwrap().mean_keepdim(1).unwrap();
        let normed = x
            .broadcast_div(&(ms + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&pw["model.norm.weight"])
            .unwrap();
        let got = normed.matmul(&pw["lm_head.weight"].t().unwrap()).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(
            d < 1e-4,
            "after {l} layers: one-token residual gives logits off by {d}"
        );
    }

    // The rule, recomputed here: per channel, the sum over the norm inputs of
    // the RMS over the vocabulary; the 12 best channels, in order.
    let per: Vec<Vec<f32>> = res
        .iter()
        .map(|x| {
            x.sqr()
                .unwrap()
                .mean(0)
                .unwrap()
                .sqrt()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect();
    let score = |c: usize| per.iter().map(|r| r[c]).sum::<f32>();
    assert_eq!(
        score(0),
        train::hidden_importance(&parent.config, pw).unwrap()[0]
    );
    let mut order: Vec<usize> = (0..h).collect();
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    let mut keep: Vec<u32> = order[..12].iter().map(|&c| c as u32).collect();
    keep.sort_unstable();
    assert_ne!(
        keep,
        (0..12).collect::<Vec<u32>>(),
        "a test where the first channels win proves little"
    );
    let idx = Tensor::new(keep.as_slice(), &Device::Cpu).unwrap();

    // lr = 0: the child holds exactly the sliced parent.
    let mut p = spec(tmp.path(), "narrow", &data, 10);
    p.train_tokenizer_on = vec![];
    p.init = Some(base.out.clone());
    p.prune_hidden = Some(12);
    p.steps = 2;
    p.lr = 0.0;
    p.weight_decay = 0.0;
    train::run(&p).unwrap();
    let child = load_snapshot(&p.out, &Device::Cpu).unwrap();
    assert_eq!(
        (
            child.config.hidden,
            child.config.heads,
            child.config.head_dim()
        ),
        (12, 2, 8)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&read(p.out.join("config.json"))).unwrap();
    assert_eq!(
        (cfg["hidden_size"].as_u64(), cfg["head_dim"].as_u64()),
        (Some(12), Some(8))
    );

    let same = |name: &str, sliced: Tensor| {
        let c = &child.weights[name];
        assert_eq!(c.dims(), sliced.dims(), "{name}");
        let d = max_abs_diff(c, &sliced);
        assert!(
            d == 0.0,
            "{name}: differs from the parent's kept channels by {d}"
        );
    };
    let cols = |name: &str| pw[name].index_select(&idx, 1).unwrap();
    let rows = |name: &str| pw[name].index_select(&idx, 0).unwrap();
    same(
        "model.embed_tokens.weight",
        cols("model.embed_tokens.weight"),
    );
    same("lm_head.weight", cols("lm_head.weight"));
    same("model.norm.weight", rows("model.norm.weight"));
    for l in 0..child.config.layers {
        let n = |s: &str| format!("model.layers.{l}.{s}.weight");
        for s in [
            "input_layernorm",
            "post_attention_layernorm",
            "self_attn.o_proj",
            "mlp.down_proj",
        ] {
            same(&n(s), rows(&n(s)));
        }
        for s in [
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
        ] {
            same(&n(s), cols(&n(s)));
        }
    }
    assert_eq!(
        child.weights["model.layers.0.self_attn.q_proj.weight"].dims(),
        &[16, 12]
    );
    assert_eq!(
        child.weights["model.layers.0.self_attn.o_proj.weight"].dims(),
        &[12, 16]
    );

    // The pruned snapshot runs and can be pruned again or trained on.
    let x = Tensor::new(&[[1u32, 2, 3, 4]], &Device::Cpu).unwrap();
    let logits = model::forward(&child.config, &child.weights, &x).unwrap();
    assert_eq!(logits.dims(), &[1, 4, parent.config.vocab_size]);
    let mut q = spec(tmp.path(), "narrower", &data, 11);
    q.train_tokenizer_on = vec![];
    q.init = Some(p.out.clone());
    q.prune_hidden = Some(10);
    q.steps = 3;
    train::run(&q).unwrap();
    let c2 = load_snapshot(&q.out, &Device::Cpu).unwrap();
    assert_eq!((c2.config.hidden, c2.config.head_dim()), (10, 8));
}

#[test]
fn extension_pieces_allow_a_repeated_subtoken() {
    use provsearch_trainer::tok;
    let tmp = tempfile::tempdir().unwrap();
    // Parent: bytes only (256 byte tokens + <|endoftext|>, no merges).
    let plain = tmp.path().join("plain.txt");
    std::fs::write(&plain, "xyz\n".repeat(50)).unwrap();
    let parent = tok::train_bpe(&[plain], 257).unwrap();
    assert_eq!(parent.get_vocab_size(true), 257);
    // Domain text whose second merge is ("ab", "ab").
    let domain = tmp.path().join("domain.txt");
    std::fs::write(&domain, "abababab\n".repeat(200)).unwrap();
    let ext = tok::extend(&parent, &[domain], 2).unwrap();
    assert_eq!(ext.get_vocab_size(true), 259);
    let pieces = tok::new_token_pieces(&parent, &ext).unwrap();
    let a = parent.token_to_id("a").unwrap();
    let b = parent.token_to_id("b").unwrap();
    let abab = ext.token_to_id("abab").expect("abab was added");
    assert_eq!(pieces[&abab], vec![a, b, a, b]);
    assert_eq!(ext.encode("abab", false).unwrap().get_ids(), &[abab]);
}

/// The weights of `cfg`'s layer-`l` tensors, by name without the layer prefix.
fn layer_tensors(cfg: &ModelConfig, w: &model::Weights, l: usize) -> Vec<(String, Tensor)> {
    let p = cfg.layer_prefix(l);
    w.iter()
        .filter_map(|(n, t)| n.strip_prefix(&p).map(|r| (r.to_string(), t.clone())))
        .collect()
}

#[test]
fn residual_width_growth_copies_channels_net2wider_style() {
    let dev = Device::Cpu;
    let cfg = tiny_config(Arch::Llama);
    let pw = model::init_weights(&cfg, 5, &dev).unwrap();
    // Non-trivial norm gains, so that copying them is visible.
    let mut pw = pw;
    let mut rng = Rng::new(3, 3);
    for (name, t) in pw.iter_mut() {
        if name.ends_with("norm.weight") {
            let g: Vec<f32> = rng
                .normal_vec(cfg.hidden, 0.2)
                .iter()
                .map(|x| 1.0 + x)
                .collect();
            *t = Tensor::from_vec(g, cfg.hidden, &dev).unwrap();
        }
    }
    let (h, n) = (cfg.hidden, 24);

    let mut c = cfg.clone();
    let mut w = pw.clone();
    let map = train::grow_hidden(&mut c, &mut w, n, 0.01, &mut Rng::new(1, 2)).unwrap();
    assert_eq!(
        (c.hidden, c.heads, c.head_dim(), c.head_dim),
        (n, 2, 8, Some(8))
    );
    model::check_weights(&c, &w).unwrap();
    assert_eq!(&map[..h], (0..h).collect::<Vec<_>>().as_slice());
    assert!(map[h..].iter().all(|&s| s < h));
    let mut count = vec![0usize; h];
    for &s in &map {
        count[s] += 1;
    }
    assert!(
        count.iter().any(|&k| k > 2),
        "a test without a channel copied twice misses the 1/count split"
    );
    // Same seed, same channels.
    let (mut c2, mut w2) = (cfg.clone(), pw.clone());
    let map2 = train::grow_hidden(&mut c2, &mut w2, n, 0.01, &mut Rng::new(1, 2)).unwrap();
    assert_eq!(map, map2);

    // Channel `ch` of tensor `name` (a row for dim 0, a column for dim 1).
    let chan = |w: &model::Weights, name: &str, dim: usize, ch: usize| -> Tensor {
        w[name].narrow(dim, ch, 1).unwrap()
    };
    let std = |name: &str| {
        pw[name]
            .flatten_all()
            .unwrap()
            .var(0)
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let check = |name: &str, dim: usize, reads: bool| {
        let tol = 6.0 * 0.01 * std(name);
        let mut noise = 0f32;
        for (ch, &src) in map.iter().enumerate() {
            let scale = if reads { 1.0 / count[src] as f64 } else { 1.0 };
            let want = (chan(&pw, name, dim, src) * scale).unwrap();
            let d = max_abs_diff(&chan(&w, name, dim, ch), &want);
            if ch < h {
                assert!(d <= 1e-7, "{name}: old channel {ch} changed by {d}");
            } else {
                assert!(
                    d <= tol,
                    "{name}: channel {ch} is {d} from its source {src}"
                );
                noise = noise.max(d);
            }
        }
        assert!(
            std(name) == 0.0 || noise > 0.0,
            "{name}: the copies have no noise"
        );
    };
    check("model.embed_tokens.weight", 1, false);
    check("lm_head.weight", 1, true);
    check("model.norm.weight", 0, false);
    for l in 0..c.layers {
        let nm = |s: &str| format!("model.layers.{l}.{s}.weight");
        check(&nm("input_layernorm"), 0, false);
        check(&nm("post_attention_layernorm"), 0, false);
        check(&nm("self_attn.o_proj"), 0, false);
        check(&nm("mlp.down_proj"), 0, false);
        for s in ["q_proj", "k_proj", "v_proj"] {
            check(&nm(&format!("self_attn.{s}")), 1, true);
        }
        for s in ["gate_proj", "up_proj"] {
            check(&nm(&format!("mlp.{s}")), 1, true);
        }
    }
    assert_eq!(w["model.layers.0.self_attn.q_proj.weight"].dims(), &[16, n]);
    assert_eq!(w["model.layers.0.self_attn.o_proj.weight"].dims(), &[n, 16]);
    assert_eq!(w["model.layers.0.mlp.down_proj.weight"].dims(), &[n, 40]);

    // Without noise a reader sees exactly the parent's input: W'·x[map] = W·x.
    let (mut c0, mut w0) = (cfg.clone(), pw.clone());
    train::grow_hidden(&mut c0, &mut w0, n, 0.0, &mut Rng::new(1, 2)).unwrap();
    let x: Vec<f32> = Rng::new(4, 4).normal_vec(h, 1.0);
    let xw: Vec<f32> = map.iter().map(|&s| x[s]).collect();
    let x = Tensor::from_vec(x, (h, 1), &dev).unwrap();
    let xw = Tensor::from_vec(xw, (n, 1), &dev).unwrap();
    for name in ["lm_head.weight", "model.layers.1.mlp.up_proj.weight"] {
        let d = max_abs_diff(
            &pw[name].matmul(&x).unwrap(),
            &w0[name].matmul(&xw).unwrap(),
        );
        assert!(d < 1e-5, "{name}: split reader off by {d}");
    }
    // ... and a writer writes each channel's value into all its copies.
    let o = "model.layers.0.self_attn.o_proj.weight";
    let y = Tensor::from_vec(Rng::new(5, 5).normal_vec(16, 1.0), (16, 1), &dev).unwrap();
    let idx: Vec<u32> = map.iter().map(|&s| s as u32).collect();
    let want = pw[o]
        .matmul(&y)
        .unwrap()
        .index_select(&Tensor::new(idx.as_slice(), &dev).unwrap(), 0)
        .unwrap();
    let d = max_abs_diff(&w0[o].matmul(&y).unwrap(), &want);
    assert!(d == 0.0, "{o}: copied rows off by {d}");
    // The grown model runs, and stays close to its parent (not equal: RMSNorm
    // sees duplicated channels).
    let ids = random_ids(&mut Rng::new(6, 6), 2, 8, cfg.vocab_size);
    let lp = model::forward(&cfg, &pw, &ids).unwrap();
    let lg = model::forward(&c, &w, &ids).unwrap();
    assert_eq!(lg.dims(), lp.dims());
    let d = max_abs_diff(&lp, &lg);
    let scale = lp
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        d > 0.0 && d < 0.2 * scale,
        "grown logits differ by {d} (parent's largest |logit| {scale})"
    );

    // Bad requests are errors, not panics, and leave the model alone.
    for bad in [h, h - 4, 0] {
        let (mut c, mut w) = (cfg.clone(), pw.clone());
        let e = train::grow_hidden(&mut c, &mut w, bad, 0.01, &mut Rng::new(1, 2)).unwrap_err();
        assert!(e.to_string().contains("larger than hidden_size 16"), "{e}");
        assert_eq!(c, cfg);
    }
    let g = tiny_config(Arch::Gpt2);
    let (mut gc, mut gw) = (g.clone(), model::init_weights(&g, 1, &dev).unwrap());
    let e = train::grow_hidden(&mut gc, &mut gw, 32, 0.01, &mut Rng::new(1, 2)).unwrap_err();
    assert!(e.to_string().contains("llama only"), "{e}");
}

#[test]
fn layer_stacking_copies_the_named_layers() {
    let dev = Device::Cpu;
    for arch in [Arch::Llama, Arch::Gpt2] {
        let mut cfg = tiny_config(arch);
        cfg.layers = 4;
        let pw = model::init_weights(&cfg, 8, &dev).unwrap();
        let spec = train::parse_layer_spec("0,1,2,1,2,3").unwrap();
        let (mut c, mut w) = (cfg.clone(), pw.clone());
        train::stack_layers(&mut c, &mut w, &spec).unwrap();
        assert_eq!(c.layers, 6, "{arch:?}");
        model::check_weights(&c, &w).unwrap();
        for (i, &src) in spec.iter().enumerate() {
            let got = layer_tensors(&c, &w, i);
            let want = layer_tensors(&cfg, &pw, src);
            assert_eq!(got.len(), want.len());
            for ((gn, gt), (wn, wt)) in got.iter().zip(&want) {
                assert_eq!(gn, wn);
                assert!(max_abs_diff(gt, wt) == 0.0, "{arch:?}: layer {i} {gn}");
            }
        }
        let outside = |w: &model::Weights| -> Vec<String> {
            w.keys()
                .filter(|n| !n.contains(".layers.") && !n.contains(".h."))
                .cloned()
                .collect()
        };
        assert_eq!(outside(&w), outside(&pw));
        for name in outside(&pw) {
            assert!(max_abs_diff(&w[&name], &pw[&name]) == 0.0, "{name}");
        }
        // The identity stack is the parent; the stacked model runs.
        let ids = random_ids(&mut Rng::new(2, 2), 2, 8, cfg.vocab_size);
        let (mut ci, mut wi) = (cfg.clone(), pw.clone());
        train::stack_layers(&mut ci, &mut wi, &[0, 1, 2, 3]).unwrap();
        let d = max_abs_diff(
            &model::forward(&cfg, &pw, &ids).unwrap(),
            &model::forward(&ci, &wi, &ids).unwrap(),
        );
        assert!(
            d == 0.0,
            "{arch:?}: identity stack changed the logits by {d}"
        );
        model::forward(&c, &w, &ids).unwrap();

        // Bad specs are errors, not panics.
        let (mut cb, mut wb) = (cfg.clone(), pw.clone());
        let e = train::stack_layers(&mut cb, &mut wb, &[0, 4]).unwrap_err();
        assert!(e.to_string().contains("layer 4 does not exist"), "{e}");
        assert_eq!((cb, wb.len()), (cfg.clone(), pw.len()));
        let e = train::stack_layers(&mut cfg.clone(), &mut pw.clone(), &[]).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
    assert_eq!(train::parse_layer_spec(" 3, 0 ,1").unwrap(), vec![3, 0, 1]);
    for bad in ["", " ", "0,,1", "0,1,", "a", "-1", "1.5"] {
        let e = train::parse_layer_spec(bad).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("--stack-layers"), "{bad:?}: {msg}");
    }
}

#[test]
fn grown_and_stacked_snapshots_load_and_train() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_corpus(tmp.path(), "corpus.txt", 7);
    let mut base = spec(tmp.path(), "base", &data, 12);
    base.steps = 4;
    train::run(&base).unwrap();
    let parent = load_snapshot(&base.out, &Device::Cpu).unwrap();
    let derived = |name: &str| {
        let mut s = spec(tmp.path(), name, &data, 13);
        s.train_tokenizer_on = vec![];
        s.init = Some(base.out.clone());
        s.steps = 2;
        s
    };

    let mut g = derived("wide");
    g.grow_hidden = Some(24);
    train::run(&g).unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&read(g.out.join("config.json"))).unwrap();
    assert_eq!(
        (
            cfg["hidden_size"].as_u64(),
            cfg["head_dim"].as_u64(),
            cfg["num_attention_heads"].as_u64()
        ),
        (Some(24), Some(8), Some(2))
    );
    let wide = load_snapshot(&g.out, &Device::Cpu).unwrap();
    assert_eq!(
        wide.weights["model.embed_tokens.weight"].dims(),
        &[parent.config.vocab_size, 24]
    );

    // lr = 0: the snapshot holds exactly the stacked parent (F16 round trip).
    let mut s = derived("deep");
    s.stack_layers = Some(vec![0, 1, 1]);
    s.lr = 0.0;
    s.weight_decay = 0.0;
    train::run(&s).unwrap();
    let deep = load_snapshot(&s.out, &Device::Cpu).unwrap();
    assert_eq!(deep.config.layers, 3);
    for (i, src) in [0, 1, 1].into_iter().enumerate() {
        for ((_, a), (_, b)) in layer_tensors(&deep.config, &deep.weights, i)
            .iter()
            .zip(&layer_tensors(&parent.config, &parent.weights, src))
        {
            assert!(max_abs_diff(a, b) == 0.0, "layer {i}");
        }
    }

    // Both need a parent; growth and width pruning do not mix.
    let mut f = spec(tmp.path(), "fresh", &data, 14);
    f.stack_layers = Some(vec![0, 0]);
    let e = train::run(&f).unwrap_err();
    assert!(e.to_string().contains("need --init"), "{e}");
    let mut b = derived("both");
    b.grow_hidden = Some(24);
    b.prune_hidden = Some(12);
    let e = train::run(&b).unwrap_err();
    assert!(e.to_string().contains("exclusive"), "{e}");
}
