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
