"""vLLM worker: run in vLLM's own environment (it imports nothing from globmed_data).

    /path/to/vllm-env/bin/python vllm_worker.py request.json response.json

request.json: {"model", "engine": {LLM kwargs}, "sampling": {SamplingParams kwargs},
"conversations": [[{"role", "content"}, ...], ...]}. response.json: one output text per
conversation, in order. All conversations go to one batched LLM.chat call, so the engine keeps
the GPU busy with continuous batching.
"""

import json
import sys


def main(request_path: str, response_path: str) -> None:
    from vllm import LLM, SamplingParams

    with open(request_path, encoding="utf-8") as f:
        job = json.load(f)
    llm = LLM(model=job["model"], **job.get("engine", {}))
    params = SamplingParams(**job.get("sampling", {}))
    results = llm.chat(job["conversations"], params, use_tqdm=False)
    texts = [r.outputs[0].text if r.outputs else None for r in results]
    with open(response_path, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
