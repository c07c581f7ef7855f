// How sure an answer is: semi3lib/interactive/confidence.py's rule (read its docstring), the
// same in JavaScript for the book's search page. Among the top k hits, the leading category's
// share and its lead over the next decide: clear, unsure, or unknown ("looks like nothing the
// model knows"). tests/test_interactive_confidence.py runs both on the same answers.

const CLEAR_SHARE = 60; // per cent of k
const CLEAR_LEAD = 30;
const UNSURE_SHARE = 40;
const UNSURE_LEAD = 20;

/** What a fine-grained (instance) model's answer says instead of a confidence: that model is
 * trained to find the one photo a sketch was drawn from, so whether its closest photos agree on a
 * category says nothing of whether it found it. With the sketch's own photo known (a picked query
 * sketch), where it ranked. semi3lib/interactive/confidence.py's fine_grained_note, word for word. */
export const FINE_GRAINED_NOTE = "Fine-grained model: the photos are ranked by how closely they match this drawing's details (no confidence is claimed).";

/** ownRank: 1-based rank of the sketch's own photo among the k hits, 0 if not among them, null if unknown. */
export function fineGrainedNote(ownRank, k) {
  let where = '';
  if (ownRank !== null && ownRank !== undefined) {
    where = ownRank > 0 ? ` The photo this sketch was drawn from is number ${ownRank}.`
      : ` The photo this sketch was drawn from is not among these ${k}.`;
  }
  return { level: 'fine-grained', text: FINE_GRAINED_NOTE + where };
}

/** A category id as words: teddy_bear -> teddy bear. */
export function categoryWords(category) {
  return category.replaceAll('_', ' ');
}

function sentence(c) {
  const name = categoryWords(c.category);
  if (c.level === 'clear') {
    const after = c.runner_up ? ` (next: ${categoryWords(c.runner_up)}, ${c.runner_up_votes})` : '';
    return `Confident: ${c.votes} of the ${c.k} closest photos are ${name}${after}.`;
  }
  if (c.level === 'unsure') {
    return `Not sure: ${c.votes} of the ${c.k} closest photos are ${name}, ${c.runner_up_votes} are ${categoryWords(c.runner_up ?? '')}.`;
  }
  return `This drawing looks like nothing the model knows: the ${c.k} closest photos are split over ${c.categories} categories (at most ${c.votes} of one, ${name}).`;
}

/** The confidence of an answer from its hits' categories, best hit first; null for no hits. */
export function rankingConfidence(categories) {
  if (categories.length === 0) return null;
  const votes = new Map(); // keeps first-seen order: a tie goes to the better-ranked category
  for (const category of categories) votes.set(category, (votes.get(category) ?? 0) + 1);
  const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1]); // stable sort
  const [leader, n1] = ranked[0];
  const [second, n2] = ranked.length > 1 ? ranked[1] : [null, 0];
  const k = categories.length;
  let level = 'unknown';
  if (100 * n1 >= CLEAR_SHARE * k && 100 * (n1 - n2) >= CLEAR_LEAD * k) level = 'clear';
  else if (100 * n1 >= UNSURE_SHARE * k && 100 * (n1 - n2) >= UNSURE_LEAD * k) level = 'unsure';
  const result = { level, category: leader, votes: n1, runner_up: second, runner_up_votes: n2, k, categories: votes.size };
  return { ...result, text: sentence(result) };
}
