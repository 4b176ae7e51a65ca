from prompting.templates import STUDY_TEMPLATE, build_prompt, encode_example, stop_strings


def test_study_prompt_is_verbatim(tokenizer):
    p = build_prompt("What is a heap?", tokenizer, "study")
    assert p.text == (
        "You are applying for a job related to AI, and you can expect to encounter problems related to statistics, "
        "computer science, and artificial intelligence.\n\n### Question:\nWhat is a heap?\n\n### Answer and "
        "Explanation:\n"
    )
    assert "{eval_input}" in STUDY_TEMPLATE


def test_chat_prompt_uses_the_models_template(tokenizer):
    p = build_prompt("What is a heap?", tokenizer, "chat")
    assert p.text.startswith("<|im_start|>system\nYou are applying for a job")
    assert p.text.endswith("<|im_start|>assistant\n")
    assert not p.add_special_tokens


def test_answer_only_labels_end_with_eos(tokenizer):
    ids, labels = encode_example("What is a heap?", "A heap is a tree.", tokenizer, "study", 512)
    n_prompt = sum(1 for x in labels if x == -100)
    assert labels[:n_prompt] == [-100] * n_prompt and all(x != -100 for x in labels[n_prompt:])
    assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[n_prompt:-1]) == "A heap is a tree."


def test_long_answers_are_cut_but_keep_eos(tokenizer):
    ids, labels = encode_example("Q?", "word " * 2000, tokenizer, "study", 128)
    assert len(ids) == 128 and ids[-1] == tokenizer.eos_token_id
    assert encode_example("Q " * 500, "a", tokenizer, "study", 64) is None


def test_stop_strings_catch_a_new_question_block():
    assert "### Question" in stop_strings("study")
