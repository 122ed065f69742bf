"""An example adamllm domain plugin: toy 'shapes' images, their captions and one benchmark."""
