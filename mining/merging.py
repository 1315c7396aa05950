"""One merge step across the chunks of a source: records that read the same claim twice
(the same composition with the same values, e.g. from the overlap of two chunks or a value
repeated in the abstract and a table) become one record citing every passage.

Two raw records merge when their compositions are the same as written (whitespace, dashes
and quotes normalised, see ``extractors.normalise_for_search``) and they give exactly the same
Tg/Tx/Tl (value and unit as written), Dmax, GFA class and heating rate. Nothing else merges:
a record with another value, or with a value the other does not give, stays separate, so a
reviewer sees both. The merged record keeps the first record's snippet as its main snippet;
the other distinct snippets go, in order, to ``more_snippets``.
"""

from dataclasses import replace

from .extractors import normalise_for_search


def composition_key(composition):
    return normalise_for_search(composition).replace(" ", "")


def _number(value):
    return None if value is None else round(float(value), 6)


def merge_key(raw):
    values = tuple(sorted((prop, _number(v), u or "K") for prop, (v, u) in raw.values.items()))
    return (composition_key(raw.composition), values, _number(raw.dmax_mm), raw.gfa_class or "",
            _number(raw.heating_rate_k_min))


def merge_records(raws):
    """The records with duplicates merged (first occurrence's order kept)."""
    merged, index = [], {}
    for raw in raws:
        key = merge_key(raw)
        if key not in index:
            index[key] = len(merged)
            merged.append(replace(raw, values=dict(raw.values), derived=dict(raw.derived),
                                  more_snippets=list(raw.more_snippets)))
            continue
        target = merged[index[key]]
        seen = {normalise_for_search(s) for s in [target.snippet, *target.more_snippets]}
        for snippet in [raw.snippet, *raw.more_snippets]:
            norm = normalise_for_search(snippet)
            if norm and norm not in seen:
                seen.add(norm)
                if target.snippet.strip():
                    target.more_snippets.append(snippet)
                else:
                    target.snippet = snippet
        for prop, how in raw.derived.items():
            target.derived.setdefault(prop, how)
    return merged
