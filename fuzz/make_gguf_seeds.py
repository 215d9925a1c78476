#!/usr/bin/env python3
"""Writes the GGUF seed corpus of the fuzzer (fuzz/corpus/gguf/): tiny Llama
files with both tokenizer kinds and one tensor of every supported type, and
a few broken variants. Run it again after changing it; the files are committed.
Usage: fuzz/make_gguf_seeds.py [out_dir]"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}
F32_T, F16_T, Q4_0, Q4_1, Q8_0, BF16_T = 0, 1, 2, 3, 8, 30


def string(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STRING:
        return struct.pack("<I", STRING) + string(v)
    if t == ARRAY:
        element, items = v
        body = struct.pack("<IIQ", ARRAY, element, len(items))
        for item in items:
            body += string(item) if element == STRING else struct.pack(SCALAR[element], item)
        return body
    return struct.pack("<I", t) + struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, type, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += string(key) + value(t, v)
    offset, data = 0, b""
    for name, dims, t, payload in tensors:
        out += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, offset)
        padded = payload + b"\0" * (-len(payload) % alignment)
        data += padded
        offset += len(padded)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def llama_keys(vocab):
    return [("general.architecture", STRING, "llama"), ("general.name", STRING, "tiny"),
            ("llama.block_count", U32, 1), ("llama.context_length", U32, 64),
            ("llama.embedding_length", U32, 8), ("llama.feed_forward_length", U32, 16),
            ("llama.attention.head_count", U32, 2), ("llama.attention.head_count_kv", U32, 1),
            ("llama.rope.freq_base", F32, 10000.0), ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
            ("llama.vocab_size", U32, vocab)]


def one_of_each_type():
    f16_one, bf16_one = struct.pack("<e", 1.0), b"\x80\x3f"
    return [("token_embd.weight", [8, 2], F32_T, struct.pack("<16f", *[i / 8 for i in range(16)])),
            ("output_norm.weight", [8], F16_T, f16_one * 8),
            ("blk.0.attn_norm.weight", [8], BF16_T, bf16_one * 8),
            ("blk.0.attn_q.weight", [32], Q8_0, f16_one + bytes(range(32))),
            ("blk.0.attn_k.weight", [32], Q4_0, f16_one + bytes(range(0, 256, 16))),
            ("blk.0.attn_v.weight", [32, 1], Q4_1, f16_one + struct.pack("<e", -0.5) + bytes(range(16)))]


def byte_level():
    tokens = ["<|endoftext|>", "<|im_start|>", "H", "e", "l", "o", "\u0120", "w", "r", "d", "He", "ll", "Hell",
              "\u0120w", "1", "2"]
    types = [3, 3] + [1] * (len(tokens) - 2)
    merges = ["H e", "l l", "He ll", "\u0120 w"]
    keys = llama_keys(len(tokens)) + [
        ("tokenizer.ggml.model", STRING, "gpt2"), ("tokenizer.ggml.pre", STRING, "smollm"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)), ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, merges)), ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 0), ("tokenizer.ggml.add_bos_token", BOOL, False)]
    return gguf(keys, one_of_each_type())


def sentencepiece():
    tokens = ["<unk>", "<s>", "</s>", "<0x41>", "<0x0A>", "\u2581", "a", "b", "\u2581a", "ab", "\u2581ab"]
    types = [2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1]
    scores = [0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -0.5, -0.7, -0.1]
    keys = llama_keys(len(tokens)) + [
        ("tokenizer.ggml.model", STRING, "llama"), ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)), ("tokenizer.ggml.scores", ARRAY, (F32, scores)),
        ("tokenizer.ggml.bos_token_id", U32, 1), ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.unknown_token_id", U32, 0), ("general.alignment", U32, 64),
        ("general.misc", ARRAY, (U64, [1, 2, 3])), ("general.flag", I8, -1), ("general.f64", F64, 0.25)]
    return gguf(keys, one_of_each_type()[:3], version=2, alignment=64)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf")
    os.makedirs(out_dir, exist_ok=True)
    good = byte_level()
    seeds = {
        "byte_level_bpe.gguf": good,
        "sentencepiece_v2_align64.gguf": sentencepiece(),
        "truncated_in_tensor_infos.gguf": good[: len(good) * 2 // 3],
        "bad_magic.gguf": b"GGUL" + good[4:],
        "huge_kv_count.gguf": good[:16] + struct.pack("<Q", 1 << 60) + good[24:],
        "tensor_past_end.gguf": gguf(llama_keys(1), [("t", [1 << 20], F32_T, b"\0" * 64)]),
        "empty_directory.gguf": gguf([], []),
    }
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
