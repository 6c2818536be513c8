//! `qforge convert`: Hugging Face checkpoint directory -> GGUF, as the pinned
//! `convert_hf_to_gguf.py` writes it.
