// The dashboard in a real browser: Debian's Chromium driven by playwright-core.
//
//   node tests/browser/dashboard.mjs SCENARIO BASE_URL
//
// BASE_URL is a running `campaign serve` (the Rust tests in tests/tests/dashboard.rs start
// one per scenario, with the faults the scenario needs). Exits non-zero with the reason
// when the page does not do what a user expects. Screenshots go to $SCREENSHOT_DIR.

import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";

const [scenario, base] = process.argv.slice(2);
if (!scenario || !base) {
  console.error("usage: dashboard.mjs SCENARIO BASE_URL");
  process.exit(2);
}
const shots = process.env.SCREENSHOT_DIR || ".";
const TIMEOUT = 30_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // No network beyond loopback here: keep Chromium from reaching out at start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
page.setDefaultTimeout(TIMEOUT);
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("dialog", (d) => {
  problems.push(`a dialog opened: ${d.message()}`);
  d.dismiss();
});
page.on("console", (m) => {
  if (m.type() === "error") console.log(`console error: ${m.text()} (${m.location().url})`);
});

/** Fills the brief form with a valid brief, `over` replacing fields by input id. */
async function fillBrief(over = {}) {
  const values = {
    objective: "Drive test-ride bookings for the spring launch",
    audience: "Urban commuters aged 25-40 who cycle to work",
    product: "Aurora e-bike",
    tone: "energetic and warm",
    prohibitedTerms: "cheap, free",
    toneAdjectives: "bold, friendly",
    palette: "teal, deep navy",
    ...over,
  };
  await page.goto(`${base}/#/new`);
  for (const [id, v] of Object.entries(values)) await page.fill(`#${id}`, v);
}

/** Submits the form and waits for the run view; returns the run id. */
async function submit() {
  await page.click("#submit");
  await page.waitForURL(/#\/runs\/[0-9A-Z]{26}$/);
  return page.url().split("/").pop();
}

async function waitRun(status) {
  await page.waitForSelector(`#run-status[data-status="${status}"]`);
}

const scenarios = {
  // Submit through the form, watch the agents go to completed live, read the bundle.
  async live() {
    const res = await page.goto(`${base}/`);
    const csp = res.headers()["content-security-policy"] || "";
    assert.match(csp, /script-src 'self'/, "the page has a Content-Security-Policy");
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), csp);
    await fillBrief();
    // The form carries the server's rules as hints.
    assert.equal(await page.getAttribute("#objective", "maxlength"), "500");
    assert.equal(await page.getAttribute("#maxLength-social", "max"), "280");
    const id = await submit();
    // Live: the agents are seen generating before they complete (they take 1–2 s here).
    await page.waitForSelector('[data-agent="visual"][data-status="generating"]');
    await page.waitForSelector('#run[data-live="WebSocket"]');
    for (const a of ["copy", "social", "visual"]) {
      await page.waitForSelector(`[data-agent="${a}"][data-status="completed"]`);
    }
    await waitRun("completed");
    await page.waitForSelector('#envelope[data-outcome="success"]');
    assert.match(await page.textContent("#envelope"), /every artifact was generated and audited/);
    // The bundle: copy, three social posts with counts, the poster's SVG as an image.
    await page.waitForSelector('[data-artifact="visual"] img.poster');
    assert.ok((await page.textContent('[data-artifact="copy"] .headline')).length > 0);
    assert.equal(await page.locator('[data-artifact="social"] .post').count(), 3);
    assert.match(await page.textContent('[data-artifact="social"] .count'), /\d+ \/ 280 characters/);
    const poster = page.locator("img.poster");
    assert.match(await poster.getAttribute("src"), /^data:image\/svg\+xml;base64,/);
    await page.waitForFunction(() => document.querySelector("img.poster").naturalWidth > 0);
    assert.equal(await page.locator(".audit[data-verdict]").count(), 3, "every artifact shows its audit");
    // "deep navy" is a descriptor: the visual's audit says which color stood in for it.
    assert.match(await page.textContent('[data-artifact="visual"] .findings'), /deep navy/);
    // The timeline: every event once, with its time.
    const events = await page.locator("#timeline li").count();
    assert.ok(events >= 15, `${events} events in the timeline`);
    assert.equal(await page.locator("#timeline li time").count(), events);
    await page.screenshot({ path: path.join(shots, "run-view.png"), fullPage: true });

    // The runs list: newest first, filtered by status.
    await page.goto(`${base}/#/runs`);
    await page.waitForSelector(`tr[data-run="${id}"]`);
    await page.selectOption("#status-filter", "failed");
    await page.waitForURL(/status=failed/);
    await page.waitForSelector("#runs-note:has-text('No failed runs')");
    await page.selectOption("#status-filter", "completed");
    await page.waitForSelector(`tr[data-run="${id}"]`);
    await page.click(`tr[data-run="${id}"] a`);
    await page.waitForURL(new RegExp(`#/runs/${id}$`));
    await waitRun("completed");
  },

  // A partial run (social fails once), retried from the page: the new iteration completes
  // and links to its parent.
  async retry() {
    await fillBrief();
    const parent = await submit();
    await page.waitForSelector('#envelope[data-outcome="partial"]');
    assert.match(await page.textContent("#envelope"), /Partial/);
    assert.match(await page.textContent("#envelope .reasons"), /social/);
    // The failed agent is chosen by default, the others not.
    assert.ok(await page.isChecked('input[name="retry-agent"][value="social"]'));
    assert.ok(!(await page.isChecked('input[name="retry-agent"][value="copy"]')));
    await page.click("#retry");
    await page.waitForURL((u) => /#\/runs\/[0-9A-Z]{26}$/.test(u.hash) && !u.hash.endsWith(parent));
    const child = page.url().split("/").pop();
    await waitRun("completed");
    await page.waitForSelector('#envelope[data-outcome="success"]');
    await page.waitForSelector(`#chain a[data-run="${parent}"]`);
    assert.match(await page.textContent("#chain"), /#1 .*→ #2 \(this run\)/);
    assert.match(await page.textContent("#run-meta"), /iteration 2/);
    await page.screenshot({ path: path.join(shots, "retry.png"), fullPage: true });
    await page.click(`#chain a[data-run="${parent}"]`);
    await page.waitForSelector('#envelope[data-outcome="partial"]');
    assert.notEqual(parent, child);
  },

  // A slow run cancelled from the page.
  async cancel() {
    await fillBrief();
    await submit();
    await page.waitForSelector('[data-agent="copy"][data-status="generating"]');
    // The button survives the refreshes the other agents' events cause: one replaced
    // between a press and its release would lose the click.
    const button = await page.$("#cancel");
    await page.waitForSelector('[data-agent="visual"][data-status="generated"]');
    await page.waitForTimeout(500);
    assert.ok(await button.evaluate((b) => b.isConnected), "the cancel button was replaced");
    await page.click("#cancel");
    await waitRun("cancelled");
    await page.waitForSelector('#envelope[data-outcome="cancelled"]');
    assert.match(await page.textContent("#envelope"), /Cancelled/);
    await page.waitForSelector('[data-agent="copy"][data-status="cancelled"]');
    // A cancelled run can be run again from the page.
    await page.waitForSelector("#retry");
  },

  // The server's 400 is shown next to the field it names.
  async invalid() {
    await fillBrief({ palette: "teal, #12345" });
    await page.click("#submit");
    const slot = page.locator('[data-error-for="brandGuidelines.palette"]');
    await slot.waitFor();
    await page.waitForFunction(() =>
      document.querySelector('[data-error-for="brandGuidelines.palette"]').textContent.length > 0);
    assert.match(await slot.textContent(), /entry 2: .*#12345/);
    assert.ok(await page.locator('.field.invalid[data-field="brandGuidelines.palette"]').count());
    assert.equal(await page.textContent('[data-error-for="objective"]'), "");
    assert.ok(page.url().endsWith("#/new"), "the form stays, with what was typed");
    assert.equal(await page.inputValue("#palette"), "teal, #12345");
  },

  // A brand kit added on the Brand kits page, then named by a brief with a priority and
  // auto mode; the run says which kit version it used, its order and what auto chose.
  async brands() {
    await page.goto(`${base}/#/brands`);
    await page.waitForSelector("#brand-list:has-text('No brand kits yet')");
    await page.fill("#kit-id", "acme-outdoor");
    await page.fill("#kit-name", "Acme Outdoor");
    await page.fill("#kit-palette", "forest green, #1B4332");
    await page.fill("#kit-terms", "on sale");
    await page.click("#kit-save");
    await page.waitForSelector('tr[data-brand="acme-outdoor"]:has-text("v1")');
    // Saving the same id again replaces it as version 2.
    await page.fill("#kit-id", "acme-outdoor");
    await page.fill("#kit-palette", "#1B4332, sand");
    await page.click("#kit-save");
    await page.waitForSelector('tr[data-brand="acme-outdoor"]:has-text("v2")');
    // What was left empty kept the kit's value.
    const row = await page.textContent('tr[data-brand="acme-outdoor"]');
    assert.match(row, /Acme Outdoor/);
    assert.match(row, /on sale/);
    assert.match(row, /#1B4332, sand/);
    // A refused kit shows the server's reason next to its field.
    await page.fill("#kit-id", "Bad Id");
    await page.click("#kit-save");
    await page.waitForFunction(() =>
      document.querySelector('#brand-form [data-error-for="brandId"]').textContent.length > 0);
    assert.match(await page.textContent('#brand-form [data-error-for="brandId"]'), /not a brand kit id/);

    await fillBrief({ priority: "visual, copy", brandId: "acme-outdoor", palette: "" });
    await page.selectOption("#executionMode", "auto");
    const id = await submit();
    await waitRun("completed");
    const meta = await page.textContent("#run-meta");
    assert.match(meta, /brand kit acme-outdoor v2/);
    assert.match(meta, /auto chose parallel: no recent agent figures yet/);
    // The kit's palette reached the poster's audit (a descriptor stood in by a known color).
    await page.waitForSelector('[data-artifact="visual"] img.poster');

    // Sequential in the given order.
    await fillBrief({ priority: "visual, copy" });
    await page.selectOption("#executionMode", "sequential");
    await submit();
    await waitRun("completed");
    const seqMeta = await page.textContent("#run-meta");
    assert.match(seqMeta, /sequential \(visual → copy → social\)/);
    assert.ok(!/null/.test(seqMeta), `no stray "null" in the header: ${seqMeta}`);

    await page.goto(`${base}/#/brands`);
    await page.click('tr[data-brand="acme-outdoor"] button.delete');
    await page.waitForSelector("#brand-list:has-text('No brand kits yet')");
    assert.ok(id);
  },

  // Text from the brief and an SVG with scripts execute nothing.
  async hostile() {
    await page.addInitScript(() => { window.__pwned = 0; });
    await fillBrief({
      product: "<script>window.__pwned=1</script>Lamp",
      objective: '<img src=x onerror="window.__pwned=2">Sell lamps',
      toneAdjectives: '<b onclick="__pwned=3">bold</b>',
    });
    const id = await submit();
    await waitRun("completed");
    await page.waitForSelector('[data-artifact="copy"] .headline');
    assert.match(await page.textContent("#run-title"), /<script>window.__pwned=1<\/script>Lamp/,
      "the product is shown as text");
    assert.equal(await page.locator("#view script, #view img[src='x'], #view b").count(), 0);
    // A poster whose SVG carries scripts (as a compromised model or store might send):
    // shown as an image, nothing runs.
    await page.route(`**/campaigns/${id}`, async (route) => {
      const res = await route.fetch();
      const run = await res.json();
      const visual = run.artifacts.find((a) => a.agent === "visual");
      visual.content.svg = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" onload="window.__pwned=4">' +
        '<script>window.__pwned=5</script><rect width="100" height="100" fill="teal"/>' +
        '<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="javascript:parent.__pwned=6"></iframe></foreignObject></svg>';
      visual.content.headline = '<img src=x onerror="window.__pwned=7">';
      await route.fulfill({ response: res, json: run });
    });
    await page.reload();
    await page.waitForSelector('[data-artifact="visual"] img.poster');
    await page.waitForFunction(() => document.querySelector("img.poster").complete);
    await page.waitForTimeout(500);
    assert.equal(await page.evaluate(() => window.__pwned), 0, "no script ran");
    assert.equal(await page.locator("#view script, #view iframe, #view img[src='x']").count(), 0);
  },
};

try {
  assert.ok(scenarios[scenario], `unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  await scenarios[scenario]();
  assert.deepEqual(problems, [], "the page raised no error and opened no dialog");
  console.log(`ok ${scenario}`);
} catch (e) {
  console.log(`FAILED ${scenario}: ${e.stack || e}`);
  for (const p of problems) console.log(p);
  try {
    await page.screenshot({ path: path.join(shots, `failed-${scenario}.png`), fullPage: true });
    console.log(`screenshot: ${path.join(shots, `failed-${scenario}.png`)}`);
  } catch {}
  process.exitCode = 1;
} finally {
  await browser.close();
}
