"""How a question is answered, one module per stage, in the order a question meets them:

1. :mod:`.analysis`: the question read once (language, glossary terms, hints, the
   follow-up's standalone query), one :class:`~.analysis.QueryAnalysis`;
2. :mod:`.candidates`: the named rankings the retrievers give for it, each with its weight;
3. :mod:`.fusion`: those rankings fused by RRF, with one :class:`~.fusion.FusionWeights`;
4. :mod:`.reranking`: the fused list lifted by the hints, rescored within documents,
   diversified into hits;
5. :mod:`.answer`: the quoted sentences and each passage's highlights;
6. :mod:`.citation`: the cited passage objects.

:mod:`.pipeline` runs them in that order. Nothing here imports Flask or the service.
"""
