"""Prompt → `LCM_CONDITIONING`, with ComfyUI's tokenization, chunking and weighting.

Tokens are laid out as ComfyUI's `SDTokenizer.tokenize_with_weights` lays them out:
the prompt is cut into weighted segments, each segment is tokenized, and the tokens
fill 77-token chunks (`BOS`, up to 75 tokens, `EOS`, padding). A segment of fewer than
8 tokens that does not fit moves whole to the next chunk; a longer one is split. Each
chunk is encoded on its own and the chunks are concatenated along the tokens.

The hidden states taken are diffusers' (`encode_prompt` with `clip_skip=None`), which
are also ComfyUI's: SD1.x/SD2.x the text encoder's `last_hidden_state` (SD2 text
encoders have 23 layers, so this is OpenCLIP's penultimate layer); SDXL both encoders'
`hidden_states[-2]` concatenated, and the pooled embedding is the second encoder's
projected `text_embeds` of the first chunk.

Weights follow ComfyUI's `encode_token_weights`: when any token's weight is not 1,
`z = (z - z_empty) * w + z_empty` at each token position whose weight is not 1,
`z_empty` being the encoding of the empty prompt at that position.

`embedding:name` puts a textual-inversion embedding's vectors (see `embeddings`) in
place of token embeddings, one chunk position per vector, as ComfyUI does.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator

import torch

from ..conditioning import LCMConditioning
from ..errors import InputError, ModelFormatError
from ..models.handles import FAMILIES, LCMClip
from .embeddings import embedding_vectors
from .weights import EMBEDDING_PREFIX, split_embeddings, weighted_segments

log = logging.getLogger(__name__)

CHUNK_LENGTH = 77
MAX_WORD_LENGTH = 8


@dataclass(frozen=True)
class EncoderOutput:
    """How one text encoder's output becomes conditioning."""

    penultimate: bool
    pooled: bool
    embedding_key: str


ENCODER_OUTPUTS = {
    "sd15": (EncoderOutput(penultimate=False, pooled=False, embedding_key="clip_l"),),
    "sd2": (EncoderOutput(penultimate=False, pooled=False, embedding_key="clip_h"),),
    "sd2-v": (EncoderOutput(penultimate=False, pooled=False, embedding_key="clip_h"),),
    "sdxl": (EncoderOutput(penultimate=True, pooled=False, embedding_key="clip_l"),
             EncoderOutput(penultimate=True, pooled=True, embedding_key="clip_g")),
}

Chunk = list[tuple[int | torch.Tensor, float]]


def token_groups(tokenizer, text: str, embedding_key: str = "clip_l") -> list[Chunk]:
    """The prompt's tokens as groups of `(token, weight)`, one group per weighted
    segment, per piece of one around an `embedding:` reference, and per embedding;
    without BOS/EOS. A token is an id, or one embedding vector (`embedding_key`'s)."""
    groups: list[Chunk] = []
    for segment, weight in weighted_segments(text):
        for piece in split_embeddings(segment):
            if piece.startswith(EMBEDDING_PREFIX):
                vectors, piece = embedding_vectors(piece, embedding_key)
                if vectors is not None:
                    groups.append([(v, weight) for v in vectors])
                if not piece:
                    continue
            ids = tokenizer(piece, verbose=False)["input_ids"][1:-1]
            groups.append([(int(t), weight) for t in ids])
    return groups


def tokenize_with_weights(tokenizer, text: str, embedding_key: str = "clip_l") -> list[Chunk]:
    """The prompt as 77-token chunks of `(token, weight)`: BOS, tokens, EOS, padding
    with the tokenizer's pad token. BOS/EOS/padding have weight 1."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    room = CHUNK_LENGTH - 1
    chunk: Chunk = [(bos, 1.0)]
    chunks = [chunk]
    for group in token_groups(tokenizer, text, embedding_key):
        splittable = len(group) >= MAX_WORD_LENGTH
        while group:
            if len(chunk) + len(group) <= room:
                chunk.extend(group)
                break
            remaining = room - len(chunk)
            if splittable:
                chunk.extend(group[:remaining])
                group = group[remaining:]
                chunk.append((eos, 1.0))
            else:
                chunk.append((eos, 1.0))
                chunk.extend([(pad, 1.0)] * remaining)
            chunk = [(bos, 1.0)]
            chunks.append(chunk)
    chunk.append((eos, 1.0))
    chunk.extend([(pad, 1.0)] * (CHUNK_LENGTH - len(chunk)))
    return chunks


def empty_tokens(tokenizer) -> list[int]:
    """The empty prompt's 77 token ids: BOS, EOS, then padding."""
    pad = tokenizer.pad_token_id
    return [tokenizer.bos_token_id, tokenizer.eos_token_id] + [pad] * (CHUNK_LENGTH - 2)


def _device(encoder) -> torch.device:
    return next(encoder.parameters()).device


def _rows(chunks: list[Chunk], tokenizer, dim: int) -> tuple[list[list[int]], dict[tuple[int, int], torch.Tensor]]:
    """Token ids per chunk, and the embedding vectors that replace the input embedding
    at `(chunk, position)`. A vector of another width is left out with a warning and
    the row padded at its end (ComfyUI's handling; weights stay by position)."""
    rows, spliced = [], {}
    for k, chunk in enumerate(chunks):
        row, dropped = [], 0
        for token, _ in chunk:
            if isinstance(token, int):
                row.append(token)
            elif token.shape[-1] == dim:
                spliced[(k, len(row))] = token
                row.append(tokenizer.bos_token_id)
            else:
                dropped += 1
                log.warning("embedding vector of width %d ignored: this text encoder takes %d", token.shape[-1], dim)
        rows.append(row + [tokenizer.pad_token_id] * dropped)
    return rows, spliced


class _SplicedEmbedding(torch.nn.Module):
    """An input-embedding layer that returns `vectors` where `mask` is set."""

    def __init__(self, base: torch.nn.Module, mask: torch.Tensor, vectors: torch.Tensor):
        super().__init__()
        self.base, self.mask, self.vectors = base, mask, vectors

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.base(ids)
        return torch.where(self.mask.unsqueeze(-1), self.vectors.to(out.dtype), out)


@contextlib.contextmanager
def _embeddings_spliced(encoder, shape: tuple[int, int], spliced: dict[tuple[int, int], torch.Tensor]) -> Iterator[None]:
    """Textual-inversion vectors in place of their placeholder tokens, for the block."""
    if not spliced:
        yield
        return
    base = encoder.get_input_embeddings()
    mask = torch.zeros(shape, dtype=torch.bool, device=base.weight.device)
    vectors = torch.zeros(*shape, base.weight.shape[1], dtype=base.weight.dtype, device=base.weight.device)
    for (k, j), vector in spliced.items():
        mask[k, j] = True
        vectors[k, j] = vector.to(vectors.dtype)
    encoder.set_input_embeddings(_SplicedEmbedding(base, mask, vectors))
    try:
        yield
    finally:
        encoder.set_input_embeddings(base)


def encode_chunks(encoder, tokenizer, chunks: list[Chunk], output: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One encoder's `[1, 77 * len(chunks), dim]` float32 hidden states (weights
    applied) and, if `output.pooled`, the first chunk's `[1, proj]` pooled embedding."""
    weights = torch.tensor([[w for _, w in c] for c in chunks], dtype=torch.float32)
    if not torch.isfinite(weights).all():
        raise InputError("prompt weight is not a finite number", input_name="text",
                         details="Weights like (word:inf) or (word:nan) give an image of noise; use a number such as (word:1.2).")
    weighted = bool((weights != 1.0).any())
    rows, spliced = _rows(chunks, tokenizer, encoder.get_input_embeddings().weight.shape[1])
    rows += [empty_tokens(tokenizer)] if weighted else []
    ids = torch.tensor(rows, dtype=torch.long, device=_device(encoder))
    with torch.no_grad(), _embeddings_spliced(encoder, tuple(ids.shape), spliced):
        out = encoder(ids, output_hidden_states=output.penultimate)
    z = (out.hidden_states[-2] if output.penultimate else out.last_hidden_state).float().cpu()
    pooled = None
    if output.pooled:
        if getattr(out, "text_embeds", None) is None:
            raise ModelFormatError("the second SDXL text encoder has no text projection",
                                   details="SDXL needs CLIPTextModelWithProjection for OpenCLIP-bigG.")
        pooled = out.text_embeds[0:1].float().cpu()
    z_chunks = z[: len(chunks)]
    if weighted:
        z_empty = z[-1]
        w = weights.unsqueeze(-1)
        z_chunks = torch.where(w != 1.0, (z_chunks - z_empty) * w + z_empty, z_chunks)
    return z_chunks.reshape(1, -1, z.shape[-1]), pooled


def encode_text(clip: LCMClip, text: str) -> LCMConditioning:
    """Encode `text` with `clip`'s tokenizers and encoders (LoRA patches applied) into
    an `LCMConditioning` for `clip.family`, as ComfyUI's CLIPTextEncode does."""
    if clip.family not in FAMILIES:
        raise ModelFormatError(f"unknown model family {clip.family!r}", details=f"Known: {', '.join(FAMILIES)}.")
    outputs = ENCODER_OUTPUTS[clip.family]
    if len(clip.tokenizers) != len(outputs) or len(clip.text_encoders) != len(outputs):
        raise ModelFormatError(
            f"{clip.family} needs {len(outputs)} tokenizer/text encoder pair(s), this CLIP has "
            f"{len(clip.tokenizers)} tokenizer(s) and {len(clip.text_encoders)} encoder(s)", input_name="clip")
    text = text or ""
    embeds, pooled = [], None
    with clip.materialized() as encoders:
        for tokenizer, encoder, output in zip(clip.tokenizers, encoders, outputs):
            chunks = tokenize_with_weights(tokenizer, text, output.embedding_key)
            z, p = encode_chunks(encoder, tokenizer, chunks, output)
            embeds.append(z)
            pooled = p if p is not None else pooled
    length = min(z.shape[1] for z in embeds)
    return LCMConditioning(embeds=torch.cat([z[:, :length] for z in embeds], dim=-1), family=clip.family,
                           pooled=pooled, text=text)

