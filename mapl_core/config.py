"""Validated configuration for building MAPL datasets (one YAML per experiment, alignment-handbook style)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mapl_core.names import Name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    """Which source columns hold the prompt and the two responses (None: detect the shape)."""

    prompt: str | None = None
    chosen: str = "chosen"
    rejected: str = "rejected"


class IngestConfig(_Strict):
    columns: ColumnMapping = ColumnMapping()
    max_chars: int = Field(8000, ge=1, description="longest prompt or response kept, in characters")
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0, description="fail when more rows are bad")
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    limit: int | None = Field(None, ge=1, description="read at most this many source rows")

    @model_validator(mode="after")
    def _fractions(self) -> IngestConfig:
        if abs(sum(self.split_fractions) - 1.0) > 1e-9 or min(self.split_fractions) < 0:
            raise ValueError("split_fractions (train, validation, test) must be >= 0 and sum to 1")
        return self


class ConstructionConfig(_Strict):
    k_min: int = Field(1, ge=1, le=6)
    k_max: int = Field(3, ge=1, le=6)
    condition_mix: float = Field(0.5, ge=0.0, le=1.0, description="share of intra rows built by condition 1")
    intra_pairing: Literal["independent", "mirrored"] = Field(
        "independent",
        description="independent: each response gets its own x_w/x_l; mirrored: the pair's two responses "
        "share one couple of prompts, swapped (see mapl_core/construction/intra.py)",
    )
    inter_combinations: int = Field(4, ge=1, le=32, description="m: combinations drawn per original pair")
    families: tuple[str, ...] | None = Field(None, description="allowed instruction ids (None: all 25)")
    max_attempts: int = Field(12, ge=1, description="family draws tried per prompt before giving up")
    max_end_phrase_words: int = Field(6, ge=2, le=12)

    @model_validator(mode="after")
    def _k(self) -> ConstructionConfig:
        if self.k_min > self.k_max:
            raise ValueError("k_min must be <= k_max")
        if self.families is not None:
            from mapl_core.instructions import INSTRUCTION_IDS

            unknown = sorted(set(self.families) - set(INSTRUCTION_IDS))
            if unknown:
                raise ValueError(f"unknown instruction ids in families: {unknown}")
        return self


class ProposalConfig(_Strict):
    """A language model proposes candidate words and end phrases for each response (issue: vLLM-backed
    condition generation); the instruction checkers still decide every label."""

    model: str = Field("default", description="'default' (SmolLM2-135M-Instruct), a local folder or hub id")
    backend: Literal["auto", "vllm", "transformers", "server"] = "auto"
    base_url: str | None = Field(None, description="server backend: the OpenAI-compatible server's URL")
    max_new_tokens: int = Field(160, ge=16, le=1024)
    temperature: float = Field(0.0, ge=0.0, description="0: greedy")
    seed: int = 0
    batch_size: int = Field(64, ge=1, description="responses per engine call (does not change the output)")
    limit: int | None = Field(
        None,
        ge=1,
        description="propose for the first N pairs of the original table (table order), the rest keep "
        "rule-derived arguments; None: every pair",
    )

    @model_validator(mode="after")
    def _server(self) -> ProposalConfig:
        if self.backend == "server" and not self.base_url:
            raise ValueError("proposals.backend 'server' needs proposals.base_url")
        if self.base_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.base_url)
            if parts.username or parts.password or parts.query or parts.fragment:
                # a recipe is stored: in commit metadata, and in Prefect's flow-run parameters and UI
                raise ValueError(
                    "proposals.base_url must not carry credentials (a user, a password or a query): a recipe "
                    "is stored with every table and run. Put the key in MAPL_SERVER_API_KEY instead."
                )
        return self


class ContractConfig(_Strict):
    decontaminate: bool = True
    benchmark_prompts: str | None = Field(None, description="IFEval-format prompts no training row may hold")
    min_condition_share: float = Field(0.1, ge=0.0, le=0.5)
    min_rows: int = Field(1, ge=0)


class BuildConfig(_Strict):
    """Everything that determines a build's output, together with the input table versions."""

    name: Name = "default"
    seed: int = 0
    source: str = Field(..., description="a file path (jsonl/json/parquet/csv, optionally .gz) or a hub id")
    source_split: str = "train"
    shape: Literal["auto", "standard", "conversational", "hh"] = "auto"
    ingest: IngestConfig = IngestConfig()
    construction: ConstructionConfig = ConstructionConfig()
    contracts: ContractConfig = ContractConfig()
    proposals: ProposalConfig | None = Field(None, description="model-proposed arguments (None: rules only)")
    batch_size: int = Field(2000, ge=1)

    def config_hash(self) -> str:
        """Stable hash of the settings that change the output (batch sizes and the name do not)."""
        payload = self.model_dump(mode="json", exclude={"batch_size", "name"})
        if payload["proposals"] is not None:
            del payload["proposals"]["batch_size"]
            if payload["proposals"]["limit"] is None:  # hashes from before the field existed stay valid
                del payload["proposals"]["limit"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | Path) -> BuildConfig:
        with open(path, encoding="utf-8") as fh:
            return cls.model_validate(yaml.safe_load(fh) or {})
