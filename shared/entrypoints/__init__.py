"""Entry points: what each trigger in function_app.py calls. Thin: parse input, call adapters, answer."""
