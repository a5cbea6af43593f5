"""Dataset layer: data.yaml parsing, label readers/writers, conversion, checks, the torch Dataset."""
