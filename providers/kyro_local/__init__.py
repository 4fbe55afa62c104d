"""kyro_local: run judge requests right now, behind the same protocol as a batch provider.

``LocalProvider`` sends each line of a shard to an OpenAI-compatible chat-completions endpoint
(OpenAI, Ollama, vLLM, llama.cpp's server, LiteLLM, kyro's emulator) or to a Python callable,
with bounded concurrency, per-request timeouts and retries, and flat memory. Its batches live
on disk, so a later process can poll them and read their results. Use it when there is no
batch API, when results are needed now, or to finish what an expired batch left undone.

Example::

    from kyro_local import LocalProvider

    provider = LocalProvider(base_url="http://127.0.0.1:8000/v1", concurrency=32)
    batch_id = await provider.submit(Path("shard.jsonl"), metadata={"job": "j1"})
    async for line in provider.results(batch_id):
        print(line.custom_id, line.ok, line.content or line.error)
"""

from __future__ import annotations

from kyro_local._backends import Handler, Reply
from kyro_local._provider import LocalProvider, default_state_dir

__all__ = ["Handler", "LocalProvider", "Reply", "default_state_dir"]
