"""The OpenAI-compatible model server behind `python -m evaluation.serve`, in three parts:

- `protocol`: the chat-completions request and response (checking a request, naming the bad field);
- `generation`: the model side (one request's choices through `model.generate`, stopped on request);
- `app`: the FastAPI app and the uvicorn server around it (limits, queue, time limits, cancellation, API key).
"""
