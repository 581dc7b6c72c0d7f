"""An independent reference for vecdex-minilm (tools/minilm): the BERT forward pass of
all-MiniLM-L6-v2 written out in numpy over the same safetensors, compared with what the candle
tool wrote for the same sentences.

Usage: python minilm_reference.py MODEL_DIR TEXTS_FILE TOOL_OUT_DIR
  TEXTS_FILE    the sentences the tool embedded, one per line
  TOOL_OUT_DIR  the tool's --out folder (sentences.f32, tokens.f32, tokens.offsets.u32)

Prints one JSON object: the largest absolute difference of any sentence or token value, and the
cosine similarities of the sentence-transformers quickstart sentences (when the first three
lines are those sentences). Exits 1 when a difference exceeds 1e-4.

The model (BERT, Devlin et al. 2019; sizes from the model's config.json): token + position +
segment embeddings, LayerNorm; 6 layers of 12-head self-attention (head size 32) and a 1,536-wide
feed-forward with exact (erf) GELU, each followed by a residual LayerNorm (eps 1e-12). Sentence
embedding: mean of the last layer over all tokens, unit length (sentence-transformers' pooling
config). Tokens: the tokenizers package over the same tokenizer.json, cut at 256 tokens, no
padding (one sentence at a time, so no attention mask is needed).
"""

import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

TOLERANCE = 1e-4

erf = np.vectorize(math.erf, otypes=[np.float64])


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, weights, name):
    return x @ weights[name + ".weight"].T.astype(np.float64) + weights[name + ".bias"]


def forward(ids, weights, config):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head = hidden // heads
    eps = config["layer_norm_eps"]
    n = len(ids)
    x = (
        weights["embeddings.word_embeddings.weight"][ids].astype(np.float64)
        + weights["embeddings.position_embeddings.weight"][:n]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps)
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q = linear(x, weights, p + "attention.self.query").reshape(n, heads, head).transpose(1, 0, 2)
        k = linear(x, weights, p + "attention.self.key").reshape(n, heads, head).transpose(1, 0, 2)
        v = linear(x, weights, p + "attention.self.value").reshape(n, heads, head).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = scores / scores.sum(axis=-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(n, hidden)
        x = layer_norm(
            x + linear(context, weights, p + "attention.output.dense"),
            weights[p + "attention.output.LayerNorm.weight"],
            weights[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        inner = linear(x, weights, p + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
        x = layer_norm(
            x + linear(inner, weights, p + "output.dense"),
            weights[p + "output.LayerNorm.weight"],
            weights[p + "output.LayerNorm.bias"],
            eps,
        )
    return x


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def main():
    model_dir, texts_file, tool_dir = sys.argv[1:4]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    weights = load_file(os.path.join(model_dir, "model.safetensors"))
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    texts = open(texts_file, encoding="utf-8").read().split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    dim = config["hidden_size"]
    tool_sentences = np.fromfile(os.path.join(tool_dir, "sentences.f32"), dtype="<f4").reshape(-1, dim)
    tool_tokens = np.fromfile(os.path.join(tool_dir, "tokens.f32"), dtype="<f4").reshape(-1, dim)
    offsets = np.fromfile(os.path.join(tool_dir, "tokens.offsets.u32"), dtype="<u4")
    if len(tool_sentences) != len(texts) or len(offsets) != len(texts) + 1:
        raise SystemExit(f"the tool wrote {len(tool_sentences)} sentences for {len(texts)} texts")
    worst_sentence = 0.0
    worst_token = 0.0
    sentences = []
    for i, text in enumerate(texts):
        encoding = tokenizer.encode(text)
        last = forward(np.array(encoding.ids), weights, config)
        sentence = unit(last.mean(axis=0))
        sentences.append(sentence)
        keep = [t for t, special in enumerate(encoding.special_tokens_mask) if special == 0]
        tokens = unit(last[keep])
        mine = tool_tokens[offsets[i] : offsets[i + 1]]
        if mine.shape != tokens.shape:
            raise SystemExit(f"text {i}: the tool kept {len(mine)} tokens, the reference {len(tokens)}")
        worst_sentence = max(worst_sentence, float(np.abs(tool_sentences[i] - sentence).max()))
        worst_token = max(worst_token, float(np.abs(mine - tokens).max()))
    report = {
        "texts": len(texts),
        "tokens": int(offsets[-1]),
        "maxAbsDifferenceSentence": worst_sentence,
        "maxAbsDifferenceToken": worst_token,
        "tolerance": TOLERANCE,
    }
    if len(texts) >= 3:
        s = np.array(sentences[:3])
        t = tool_sentences[:3].astype(np.float64)
        report["quickstartReference"] = [float(s[0] @ s[1]), float(s[0] @ s[2]), float(s[1] @ s[2])]
        report["quickstartTool"] = [float(t[0] @ t[1]), float(t[0] @ t[2]), float(t[1] @ t[2])]
    report["pass"] = worst_sentence <= TOLERANCE and worst_token <= TOLERANCE
    print(json.dumps(report))
    sys.exit(0 if report["pass"] else 1)


if __name__ == "__main__":
    main()
