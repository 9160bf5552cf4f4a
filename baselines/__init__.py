"""Reference agents registered under stable names: random, rule, clip, qwen-vl."""
