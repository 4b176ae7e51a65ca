"""Credentials masked in every message and never written to results (issue 12)."""
import json

import pytest

from data.secrets import mask_text, mask_url, mask_urls, split_userinfo


@pytest.mark.parametrize("url, masked", [
    ("bolt://neo4j:s3cret@localhost:7687", "bolt://neo4j:***@localhost:7687"),
    ("https://ghp_TOKEN@proxy.example/v1", "https://***@proxy.example/v1"),
    ("http://u:p@ss@h:8000/v1?api_key=abc&model=m", "http://u:***@h:8000/v1?api_key=***&model=m"),
    ("https://h/v1?access_token=abc&sig=x&q=1", "https://h/v1?access_token=***&sig=***&q=1"),
    ("bolt//neo:s3cret@localhost:7687", "bolt//***@localhost:7687"),
    ("http://[::1:pw@x/v1", "http://***@x/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("neo4j://db.example", "neo4j://db.example"),
    (None, None),
    ("", ""),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_text_and_nested_values():
    text = "Given URI: 'neo4j://neo:s3cret@127.0.0.1:1'. Also see https://docs.example/x."
    assert mask_text(text) == "Given URI: 'neo4j://neo:***@127.0.0.1:1'. Also see https://docs.example/x."
    value = {"judge_base_url": "http://u:pw@h/v1", "runs": [{"message": "failed at http://t0k@h/v1"}], "n": 3}
    assert mask_urls(value) == {"judge_base_url": "http://u:***@h/v1",
                                "runs": [{"message": "failed at http://***@h/v1"}], "n": 3}


def test_split_userinfo():
    assert split_userinfo("neo4j://neo:p%40ss@h:7687/x") == ("neo4j://h:7687/x", "neo", "p@ss")
    assert split_userinfo("bolt://h:7687") == ("bolt://h:7687", None, None)


def test_the_judge_records_its_endpoint_without_credentials():
    from evaluation.geval import JudgeConfig, OpenAIJudge

    cfg = JudgeConfig(kind="openai", model="m", base_url="http://user:s3cret@127.0.0.1:9/v1")
    judge = OpenAIJudge(cfg, api_key="k")
    assert judge.cache_identity()["base_url"] == "http://user:***@127.0.0.1:9/v1"
    assert "s3cret" not in json.dumps(cfg.public_dict())
    assert "s3cret" in str(judge.client.base_url)  # the client itself still authenticates with it
