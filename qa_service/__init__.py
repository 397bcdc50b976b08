"""qa_service: question answering with cited passages over Swedish parliamentary documents."""

__version__ = "0.1.0"
