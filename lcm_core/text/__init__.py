"""Text: the offline CLIP tokenizer and prompt encoding."""
