"""The wording of the task and caption turns: adamllm's own template pools.

A task turn is one user message and one assistant message made from a triplet. Four pools:

- ``QA_FORWARD``: ask ``{question}``, answer ``{answer}`` (a single response text: the informative
  answer, informative + precise, or one answer alone in the ablations);
- ``QA_INVERTED``: give ``{answer}``, ask for the question it answers; the reply is ``{question}``;
- ``COT_FORWARD``: ask ``{question}``, reply with ``{reasoning}`` (the informative answer) and
  ``{answer}`` (the precise answer) together;
- ``COT_INVERTED``: give ``{answer}`` (and sometimes the question), ask for the reasoning (and the
  question); the reply holds what was not given.

Every template of a pool uses each of its pool's fields exactly once (user and assistant
together); ``tests/compose/test_templates.py`` checks it. A given answer inside a user message
is followed by a line break or ends the message, so an answer's own final period never runs into
the template's text. ``CAPTION_INSTRUCTIONS`` ask for a caption when a pair brings no caption
instruction of its own. Changing a pool changes which template a seed picks: mixes composed
before and after differ.
"""
from __future__ import annotations

from typing import NamedTuple


class Template(NamedTuple):
    user: str
    assistant: str

    def fill(self, **fields: str) -> tuple[str, str]:
        """(user, assistant) with the fields put in (their own braces are not read as fields)."""
        return self.user.format(**fields), self.assistant.format(**fields)


QA_FIELDS = ("question", "answer")
COT_FIELDS = ("question", "answer", "reasoning")

QA_FORWARD = (
    Template("{question}", "{answer}"),
    Template("Question: {question}", "{answer}"),
    Template("{question}\nPlease answer based on the image.", "{answer}"),
    Template("Look at the image and answer the question.\n{question}", "{answer}"),
    Template("Here is a question about the picture.\n{question}", "{answer}"),
    Template("Using what the image shows, respond to this:\n{question}", "{answer}"),
    Template("{question}\nAnswer using the visual content.", "{answer}"),
    Template("Q: {question}", "A: {answer}"),
    Template("Please help me with this question about the image:\n{question}", "{answer}"),
    Template("I have a question regarding this image.\n{question}", "{answer}"),
    Template("Examine the image carefully.\n{question}", "{answer}"),
    Template("Given the image:\n{question}", "{answer}"),
    Template("Answer the following question about the image.\n{question}", "{answer}"),
    Template("{question}\nRespond according to what you see.", "{answer}"),
    Template("Consider the picture.\n{question}", "Answer: {answer}"),
    Template("Query about the image: {question}", "{answer}"),
    Template("Based on the visual evidence, please reply.\n{question}", "{answer}"),
    Template("Take a look at this image.\n{question}", "{answer}"),
    Template("{question}\nUse the image to answer.", "{answer}"),
    Template("Can you answer this about the image?\n{question}", "{answer}"),
    Template("Study the image, then answer the question below.\n{question}", "{answer}"),
    Template("Image question: {question}", "Response: {answer}"),
)

QA_INVERTED = (
    Template("Here is an answer about the image:\n{answer}\nWrite the question it responds to.", "{question}"),
    Template("Write a question about this image whose answer is:\n{answer}", "{question}"),
    Template("The following is a reply to a question about the picture.\nReply: {answer}\nWhat was the question?",
             "{question}"),
    Template("Someone looked at this image and replied:\n{answer}\nWhat might they have been asked?", "{question}"),
    Template("Answer: {answer}\nCompose the matching question about the image.", "Question: {question}"),
    Template("Come up with a question about the image that this text answers.\n{answer}", "{question}"),
    Template("Given the image and the answer below, recover the question.\nAnswer: {answer}", "{question}"),
    Template("Reverse the task: the answer is given, you ask the question.\nAnswer: {answer}", "{question}"),
    Template("What question about this image would lead to the following reply?\n{answer}", "{question}"),
    Template("Create a question that fits this image and has this answer:\n{answer}", "{question}"),
    Template("I know the answer but not the question. The answer is:\n{answer}\nWhat is the question?",
             "{question}"),
    Template("Formulate a question about the picture for which the correct reply is:\n{answer}", "{question}"),
    Template("Below is an answer. Write a question about the image that it would answer well.\n{answer}",
             "{question}"),
    Template("Generate the question for this image-based answer:\n{answer}", "{question}"),
    Template("An assistant looked at the image and said:\n{answer}\nWhat was the assistant asked?", "{question}"),
    Template("Turn this answer into the question it answers, using the image as context.\n{answer}",
             "{question}"),
    Template("Propose a question about the image. Its answer must be:\n{answer}", "{question}"),
    Template("Ask me something about this image that I would answer with:\n{answer}", "{question}"),
    Template("Target answer: {answer}\nWrite a question about the picture with that answer.", "{question}"),
    Template("Think of a question about the image that has the answer below.\nAnswer: {answer}",
             "Question: {question}"),
    Template("Work backwards from this answer to a question about the image:\n{answer}", "{question}"),
)

COT_FORWARD = (
    Template("{question}", "{reasoning}\nAnswer: {answer}"),
    Template("{question}\nExplain your reasoning, then give the answer.", "{reasoning}\nFinal answer: {answer}"),
    Template("{question}\nThink it through step by step.", "{reasoning}\nTherefore: {answer}"),
    Template("{question}\nGive a short answer first, then explain.", "{answer}\nReason: {reasoning}"),
    Template("Answer with reasoning:\n{question}", "{reasoning}\nIn short: {answer}"),
    Template("{question}\nJustify your answer.", "{answer}\nJustification: {reasoning}"),
    Template("Reason about the image, then answer.\n{question}", "Reasoning: {reasoning}\nAnswer: {answer}"),
    Template("{question}\nShow how you reach the answer.", "{reasoning}\nThat gives: {answer}"),
    Template("Question: {question}\nProvide an explanation and a concise answer.",
             "Explanation: {reasoning}\nConcise answer: {answer}"),
    Template("{question}\nFirst describe what supports the answer, then state it.", "{reasoning}\nSo: {answer}"),
    Template("{question}\nWalk me through it.", "{reasoning}\nConclusion: {answer}"),
    Template("{question}\nAnswer briefly and add why.", "{answer}\nWhy: {reasoning}"),
    Template("Look closely at the image.\n{question}\nExplain before answering.", "{reasoning}\nMy answer: {answer}"),
    Template("{question}\nPut the short answer on the last line.", "{reasoning}\n{answer}"),
    Template("{question}\nLead with the answer, then support it with evidence from the image.",
             "{answer}\nEvidence: {reasoning}"),
    Template("Using the image, reason it out:\n{question}", "{reasoning}\nHence the answer: {answer}"),
    Template("{question}\nWhat is the answer, and how can you tell?", "{answer}\nHow I can tell: {reasoning}"),
    Template("{question}\nPlease give a detailed rationale followed by the answer.",
             "Rationale: {reasoning}\nAnswer: {answer}"),
    Template("Solve this question about the image with an explanation.\n{question}",
             "{reasoning}\nResult: {answer}"),
    Template("{question}\nAnswer in two parts: the reasoning, then the answer.",
             "1. Reasoning: {reasoning}\n2. Answer: {answer}"),
    Template("{question}\nExplain, then conclude with a short answer.", "{reasoning}\nTo sum up: {answer}"),
)

COT_INVERTED = (
    Template("{question}\nThe answer is:\n{answer}\nExplain why.", "{reasoning}"),
    Template("Answer: {answer}\nWrite the question about the image that this answers, then explain the answer.",
             "Question: {question}\nExplanation: {reasoning}"),
    Template("Question: {question}\nSomeone answered:\n{answer}\nUsing the image, explain why that answer is right.",
             "{reasoning}"),
    Template("Which question about the image does the answer below fit, and why?\n{answer}",
             "{question}\nWhy: {reasoning}"),
    Template("Here is a question and its answer about the image.\nQuestion: {question}\nAnswer: {answer}\n"
             "Write the reasoning that leads to the answer.", "{reasoning}"),
    Template("The short answer is:\n{answer}\nPose a matching question about the image and justify the answer.",
             "Question: {question}\nJustification: {reasoning}"),
    Template("{question}\nI was told the answer is:\n{answer}\nCan you explain how the image supports it?",
             "{reasoning}"),
    Template("Work backwards from the answer below: state the question about the image and the reasoning.\n"
             "Answer: {answer}", "Question: {question}\nReasoning: {reasoning}"),
    Template("Explain this answer using the image.\nQuestion: {question}\nAnswer: {answer}", "{reasoning}"),
    Template("Propose a question about the image with the answer below, and give the explanation behind it.\n"
             "{answer}", "{question}\n{reasoning}"),
    Template("Why is the following the answer to this question about the image?\nQuestion: {question}\n"
             "Answer: {answer}", "{reasoning}"),
    Template("An answer is given:\n{answer}\nWhat question does it answer, and what in the image supports it?",
             "It answers: {question}\nSupport: {reasoning}"),
    Template("Q: {question}\nA: {answer}\nGive the rationale for A.", "{reasoning}"),
    Template("Write a question about the picture whose short answer is given below, then write a longer answer "
             "to it.\n{answer}", "{question}\n{reasoning}"),
    Template("{question}\nKnowing that the answer is the following, describe the evidence in the image.\n{answer}",
             "{reasoning}"),
    Template("Recover the question and explain the answer.\nAnswer: {answer}",
             "Question: {question}\nExplanation: {reasoning}"),
    Template("Defend this answer to the question with details from the image.\nQuestion: {question}\n"
             "Answer: {answer}", "{reasoning}"),
    Template("Reverse the task: start from the answer, write the question, then justify it.\nAnswer: {answer}",
             "Question: {question}\nJustification: {reasoning}"),
    Template("For this question about the image:\n{question}\nthe expected answer is:\n{answer}\nExplain it.",
             "{reasoning}"),
    Template("Create a question-and-explanation pair about this image for the answer:\n{answer}",
             "Question: {question}\nExplanation: {reasoning}"),
    Template("{question}\nAnswer given: {answer}\nPlease elaborate on why.", "{reasoning}"),
)

#: Pools by kind of task turn and direction.
POOLS: dict[str, dict[str, tuple[Template, ...]]] = {
    "qa": {"forward": QA_FORWARD, "inverted": QA_INVERTED},
    "cot": {"forward": COT_FORWARD, "inverted": COT_INVERTED},
}
POOL_FIELDS = {"qa": QA_FIELDS, "cot": COT_FIELDS}

#: Caption requests for pairs without a caption instruction of their own.
CAPTION_INSTRUCTIONS = (
    "Describe the image.",
    "What does this image show?",
    "Write a caption for this picture.",
    "Give a detailed description of the image.",
    "Describe what you see.",
    "Explain the contents of this image.",
    "Summarize the image in a few sentences.",
    "Provide a description of the picture.",
    "What is depicted here?",
    "Caption this image.",
    "Tell me about this image.",
    "Describe the scene shown.",
    "Write a short paragraph describing the image.",
    "What can be seen in this picture?",
    "Give an account of what the image contains.",
    "Describe the image in detail.",
    "Write a descriptive caption.",
    "Characterize what this image shows.",
    "Provide a caption that describes the image.",
    "What is in this image? Describe it.",
    "Offer a description of the visual content.",
)
