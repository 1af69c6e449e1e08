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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .. import paths
from ..conditioning import LCMConditioning
from ..errors import InputError, ModelFormatError
from ..models.handles import FAMILIES, LCMClip
from .weights import EMBEDDING_PREFIX, embedding_name, split_embeddings, weighted_segments

log = logging.getLogger(__name__)

CHUNK_LENGTH = 77
MAX_WORD_LENGTH = 8
EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")


@dataclass(frozen=True)
class EncoderOutput:
    """How one text encoder's output becomes conditioning."""

    penultimate: bool
    pooled: bool


_OUTPUTS = {
    "sd15": (EncoderOutput(penultimate=False, pooled=False),),
    "sd2": (EncoderOutput(penultimate=False, pooled=False),),
    "sd2-v": (EncoderOutput(penultimate=False, pooled=False),),
    "sdxl": (EncoderOutput(penultimate=True, pooled=False), EncoderOutput(penultimate=True, pooled=True)),
}

Chunk = list[tuple[int, float]]


def _find_embedding(name: str) -> str | None:
    """The embeddings-folder file `name` refers to (ComfyUI tries the bare name, then
    `.safetensors`, `.pt`, `.bin`, in every folder and sub-folder), or None."""
    if not name:
        return None
    name = paths.check_name(name, input_name="text")
    for folder in paths.folders("embeddings"):
        if not folder.is_dir():
            continue
        for sub in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
            for candidate in [sub / name] + [sub / (name + ext) for ext in EMBEDDING_EXTENSIONS]:
                if candidate.is_file():
                    return str(candidate)
    return None


def _embedding_leftover(piece: str) -> str:
    """The text after an `embedding:name` reference, once the reference is dealt with.

    Textual-inversion embeddings are not supported yet: one that exists is refused; one
    that does not is dropped with a warning, as ComfyUI drops it.
    """
    name, leftover = embedding_name(piece)
    found = _find_embedding(name)
    if found is None:
        stripped = name.strip(",")
        if len(stripped) < len(name):
            found = _find_embedding(stripped)
            leftover = f"{name[len(stripped):]} {leftover}"
    if found is not None:
        raise InputError(
            f"prompt uses the textual-inversion embedding {EMBEDDING_PREFIX}{name}, which LCM Text Encode "
            "cannot apply yet", input_name="text",
            details=f"Found {found}. Remove '{EMBEDDING_PREFIX}{name}' from the prompt, or write the words it "
                    "stands for instead.")
    log.warning("embedding %s%s does not exist, ignoring", EMBEDDING_PREFIX, name)
    return leftover


def token_groups(tokenizer, text: str) -> list[Chunk]:
    """The prompt's tokens as groups of `(token id, weight)`, one group per weighted
    segment (or piece of one around an `embedding:` reference), without BOS/EOS."""
    groups: list[Chunk] = []
    for segment, weight in weighted_segments(text):
        for piece in split_embeddings(segment):
            if piece.startswith(EMBEDDING_PREFIX):
                piece = _embedding_leftover(piece)
                if not piece:
                    continue
            ids = tokenizer(piece, verbose=False)["input_ids"][1:-1]
            groups.append([(int(t), weight) for t in ids])
    return groups


def tokenize_with_weights(tokenizer, text: str) -> list[Chunk]:
    """The prompt as 77-token chunks of `(token id, weight)`: BOS, tokens, EOS, padding
    with the tokenizer's pad token. BOS/EOS/padding have weight 1."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    room = CHUNK_LENGTH - 1
    chunk: Chunk = [(bos, 1.0)]
    chunks = [chunk]
    for group in token_groups(tokenizer, text):
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


def encode_chunks(encoder, tokenizer, chunks: list[Chunk], output: EncoderOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One encoder's `[1, 77 * len(chunks), dim]` float32 hidden states (weights
    applied) and, if `output.pooled`, the first chunk's `[1, proj]` pooled embedding."""
    weights = torch.tensor([[w for _, w in c] for c in chunks], dtype=torch.float32)
    if not torch.isfinite(weights).all():
        raise InputError("prompt weight is not a finite number", input_name="text",
                         details="Weights like (word:inf) or (word:nan) give an image of noise; use a number such as (word:1.2).")
    weighted = bool((weights != 1.0).any())
    rows = [[t for t, _ in c] for c in chunks] + ([empty_tokens(tokenizer)] if weighted else [])
    ids = torch.tensor(rows, dtype=torch.long, device=_device(encoder))
    with torch.no_grad():
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
    outputs = _OUTPUTS[clip.family]
    if len(clip.tokenizers) != len(outputs) or len(clip.text_encoders) != len(outputs):
        raise ModelFormatError(
            f"{clip.family} needs {len(outputs)} tokenizer/text encoder pair(s), this CLIP has "
            f"{len(clip.tokenizers)} tokenizer(s) and {len(clip.text_encoders)} encoder(s)", input_name="clip")
    text = text or ""
    embeds, pooled = [], None
    with clip.materialized() as encoders:
        for tokenizer, encoder, output in zip(clip.tokenizers, encoders, outputs):
            z, p = encode_chunks(encoder, tokenizer, tokenize_with_weights(tokenizer, text), output)
            embeds.append(z)
            pooled = p if p is not None else pooled
    length = min(z.shape[1] for z in embeds)
    return LCMConditioning(embeds=torch.cat([z[:, :length] for z in embeds], dim=-1), family=clip.family,
                           pooled=pooled, text=text)

