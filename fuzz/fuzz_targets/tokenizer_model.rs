#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| provsearch_formats::fuzzing::fuzz_tokenizer_model(data));
