"""No credentials a server URL may carry end up in table metadata or in error messages (issue 32)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import HH_TEST
from pydantic import ValidationError

from mapl_core.build import build
from mapl_core.config import BuildConfig, IngestConfig, ProposalConfig
from mapl_core.generation.server import OpenAIServerGenerator, ServerUnavailable
from mapl_core.redaction import redact_url, redacted
from mapl_core.storage.delta_tables import DatasetStore

SECRET_URL = "http://alice:s3cret@127.0.0.1:9/v1?api_key=k3y#frag"


def test_urls_lose_user_password_query_and_fragment() -> None:
    assert redact_url(SECRET_URL) == "http://***@127.0.0.1:9/v1"
    assert redact_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert redacted({"a": [{"base_url": SECRET_URL}], "b": SECRET_URL}) == {
        "a": [{"base_url": "http://***@127.0.0.1:9/v1"}],
        "b": SECRET_URL,  # only URL fields are touched
    }


def test_a_recipe_may_not_carry_credentials_and_metadata_names_the_server(tmp_path: Path) -> None:
    """A recipe is stored with every table (commit metadata) and every run (Prefect's flow-run parameters, the
    UI): a URL with a user, password or query is refused where the recipe validates; the key comes from the
    environment."""
    with pytest.raises(ValidationError, match=r"must not carry credentials.*MAPL_SERVER_API_KEY"):
        ProposalConfig(model="m", backend="server", base_url=SECRET_URL)
    for part in ("http://alice@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?api_key=k3y"):
        with pytest.raises(ValidationError, match="must not carry credentials"):
            ProposalConfig(model="m", backend="server", base_url=part)
    # the proposals section is validated but never started here: the ingest stage opens no engine
    cfg = BuildConfig(name="r", source=str(HH_TEST), ingest=IngestConfig(limit=8), batch_size=8,
                      proposals={"model": "m", "backend": "server", "base_url": "http://127.0.0.1:9/v1"})  # fmt: skip
    store = DatasetStore(tmp_path)
    build(cfg, store, stage="ingest")
    assert "127.0.0.1:9" in json.dumps(store.versions("r_original")[-1].metadata)  # the server is still named


def test_server_errors_name_the_server_without_its_credentials() -> None:
    with pytest.raises(ServerUnavailable) as raised:
        OpenAIServerGenerator(SECRET_URL, health_timeout=1)
    assert "s3cret" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)
