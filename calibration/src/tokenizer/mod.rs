//! Tokenizers that give the token ids llama.cpp gives: SentencePiece and byte-level BPE.
