"""vLLM worker: run in vLLM's own environment (it imports nothing from globmed_data).

    /path/to/vllm-env/bin/python vllm_worker.py request.json response.json

request.json: {"model", "engine": {LLM kwargs}, "sampling": {SamplingParams kwargs},
"conversations": [[{"role", "content"}, ...], ...]}. response.json: one output text per
conversation, in order (null for a conversation whose prompt does not fit the model's context:
vLLM would refuse the whole call). All the others go to one batched LLM.chat call, so the
engine keeps the GPU busy with continuous batching.
"""

import json
import sys


def main(request_path: str, response_path: str) -> None:
    from vllm import LLM, SamplingParams

    with open(request_path, encoding="utf-8") as f:
        job = json.load(f)
    llm = LLM(model=job["model"], **job.get("engine", {}))
    params = SamplingParams(**job.get("sampling", {}))
    tokenizer = llm.get_tokenizer()
    room = llm.llm_engine.model_config.max_model_len - (params.max_tokens or 0)
    fits = [
        len(tokenizer.encode(tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)) <= room
        for c in job["conversations"]
    ]  # fmt: skip
    chosen = [c for c, ok in zip(job["conversations"], fits, strict=True) if ok]
    results = iter(llm.chat(chosen, params, use_tqdm=False) if chosen else [])
    texts = []
    for ok in fits:
        result = next(results) if ok else None
        texts.append(result.outputs[0].text if result is not None and result.outputs else None)
    with open(response_path, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
