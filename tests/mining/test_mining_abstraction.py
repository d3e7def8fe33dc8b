"""Query abstraction (named quantities, people) and the fusion of response steps."""

from __future__ import annotations

from thoughtbank.templates.abstraction import QueryAbstraction, person_names
from thoughtbank.templates.fusion import StepContext, code_steps, fuse_steps, response_steps

DUCKS = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day at "
    "the farmers' market?"
)
DUCKS_RESPONSE = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18"
)


def test_quantities_become_named_symbols_and_no_query_number_survives() -> None:
    abstraction = QueryAbstraction(DUCKS, [DUCKS_RESPONSE])
    text = abstraction.apply("Janet sells 16 - 3 - 4 = 9 duck eggs a day, at $2 each.")
    assert text == (
        "X sells [eggs per day] - [breakfast every morning] - [friends day] = "
        "[duck eggs] a day, at [price per fresh duck] each."
    )
    assert abstraction.quantity_names == (
        "eggs per day",
        "breakfast every morning",
        "friends day",
        "price per fresh duck",
    )
    assert abstraction.apply("She eats three, then four.") == (
        "She eats [breakfast every morning], then [friends day]."
    )


def test_constants_stay_and_computed_values_get_names() -> None:
    query = "A box holds 3 dozen eggs. How many eggs are in 5 boxes?"
    abstraction = QueryAbstraction(query, ["3 * 12 = 36 eggs per box.\n36 * 5 = 180 eggs."])
    assert abstraction.apply("3 * 12 = 36 eggs per box.") == ("[dozen eggs] * 12 = [eggs per box].")
    assert abstraction.apply("36 * 5 = 180 eggs.") == "[eggs per box] * [boxes] = [eggs]."


def test_only_names_are_masked() -> None:
    query = (
        "If Toby reads 45 pages and An reads none, who wins? The temperature was 2 degrees "
        "Celsius in the morning. Toby's book is long."
    )
    assert person_names(query) == ("Toby",)
    assert person_names("An apple a day. If it rains, Mary buys an umbrella.") == ("Mary",)


def _context(query: str, responses: list[str], options: tuple[str, ...] = ()) -> StepContext:
    return StepContext(QueryAbstraction(query, responses), query, options)


def test_steps_drop_annotations_answers_options_and_restated_questions() -> None:
    query = (
        "If the government regulates a monopoly to produce at the allocative efficient "
        "quantity, which of the following would be true?"
    )
    response = (
        "Allocative efficiency occurs where price equals marginal cost.\n"
        "If the government regulates a monopoly to produce at the allocative efficient "
        "quantity, then the deadweight loss would decrease.\n"
        "So the deadweight loss in this market would decrease.\n"
        "The answer is (E)."
    )
    context = _context(query, [response], ("the deadweight loss in this market would decrease.",))
    assert response_steps(response, context) == [
        "Allocative efficiency occurs where price equals marginal cost."
    ]
    assert response_steps("\\boxed{D} Bloom", _context("Where?", [])) == []


def test_fusion_keeps_the_steps_responses_agree_on_in_order() -> None:
    steps = [
        [
            "Add the eggs used: [a] + [b] = [used].",
            "Subtract them: [total] - [used] = [left].",
            "Multiply by the price: [left] * [price] = [dollars].",
        ],
        ["Eggs left: [total] - [used] = [left] after subtracting.", "Unrelated remark here."],
        [
            "Add the eggs used first: [a] + [b] = [used].",
            "Multiply eggs left by the price: [left] * [price] = [dollars].",
        ],
    ]
    assert fuse_steps(steps) == tuple(steps[0])
    assert fuse_steps([["Only one response reasons here."], []]) == (
        "Only one response reasons here.",
    )
    assert fuse_steps([[], []]) == ()


def test_code_steps_describe_the_method_without_the_code() -> None:
    code = "import math\ndef digit_distance(n1, n2):\n    return sum(map(int, str(abs(n1 - n2))))\n"
    assert code_steps(code) == (
        "Define digit_distance(n1, n2) as the task asks.",
        "Import the modules it needs: math.",
        "Build the result with abs(), map(), str() and sum().",
        "Return the result and check it against the examples the task gives.",
    )
    assert code_steps("not python at all (") == ()


def test_an_imperative_verb_opening_a_sentence_is_no_name() -> None:
    assert person_names("Write the prime factorization of 48. Use exponents where possible.") == ()
