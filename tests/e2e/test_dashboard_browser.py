"""The dashboard in a real browser: headless Chromium, driven by Selenium, while a miner mines.

The distribution's Chromium and chromedriver (``apt-get install chromium chromium-driver``);
Selenium is pointed at that driver, so nothing is downloaded.  Without them the test skips,
unless ``SV2PROXY_REQUIRE_BROWSER`` is set (CI sets it, so it never silently skips there).
The screenshot is kept as an artifact: ``test-artifacts/dashboard-*.png`` at the repository's
root (or under ``SV2PROXY_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from sv2proxy.testing import MiningDeviceFactory, RegtestNode
from tests.e2e.test_solo_regtest import connect, stop, until
from tests.e2e.test_web import TOKEN, start_daemon, web_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("SV2PROXY_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("SV2PROXY_REQUIRE_BROWSER"):
        raise RuntimeError("SV2PROXY_REQUIRE_BROWSER is set but chromium or chromedriver is not installed")
    pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)


def look_at_dashboard(url: str, width: int, height: int, screenshot: Path, phone: bool) -> dict:
    """Open ``url`` in headless Chromium (blocking: run in a thread) and read what it shows."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    if phone:
        # A desktop window is never narrower than ~500 px: emulate the phone's screen instead.
        metrics = {"width": width, "height": height, "pixelRatio": 2.0, "mobile": True, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    else:
        options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(url)
        charts = {}
        for chart in driver.find_elements(By.CSS_SELECTOR, "svg.chart"):
            box = chart.rect
            series = chart.find_elements(By.CSS_SELECTOR, "polyline.series")
            # A line with data: some point above the zero line (a smaller y is higher up).
            ys = [
                float(pair.split(",")[1]) for line in series for pair in line.get_attribute("points").split()
            ]
            charts[chart.get_attribute("data-chart")] = {
                "width": box["width"],
                "height": box["height"],
                "series": len(series),
                "rises": bool(ys) and min(ys) < max(ys),
            }
        workers = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "table td:first-child")]
        page_width = driver.execute_script("return document.documentElement.scrollWidth")
        viewport = driver.execute_script("return window.innerWidth")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        return {
            "charts": charts,
            "cells": workers,
            "title": driver.title,
            "page_width": page_width,
            "viewport": viewport,
        }
    finally:
        driver.quit()


@pytest_twisted.ensureDeferred
async def test_the_dashboard_renders_charts_with_data_on_a_phone_and_a_desktop(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    miners = MiningDeviceFactory(reactor, "alice.rig1", pause=0.05, nonces_per_slice=8)
    try:
        base = await web_url(daemon)
        await connect(miners, daemon, options)
        await miners.when(lambda s: len(s.blocks) >= 2 and s.shares_acknowledged >= 3)
        await until(lambda: node.height >= 2)

        # The browser opens /?token=...: the page sets the cookie its refreshes then carry.
        url = f"{base}/?token={TOKEN}"
        for name, width, height in (("phone", 412, 915), ("desktop", 1280, 1000)):
            shot = ARTIFACTS / f"dashboard-{name}.png"
            seen = await deferToThread(look_at_dashboard, url, width, height, shot, name == "phone")
            assert seen["title"].startswith("sv2proxy"), seen
            pool = seen["charts"]["pool-hash-rate"]
            assert pool["series"] == 1 and pool["rises"], seen
            worker = seen["charts"]["worker-hash-rate"]
            assert worker["series"] >= 1 and worker["rises"], seen
            # The charts fit the screen: no sideways scrolling of the page on a phone.
            assert pool["width"] <= seen["viewport"] and seen["page_width"] <= seen["viewport"] <= width, seen
            assert "alice.rig1" in seen["cells"], seen
            assert shot.stat().st_size > 10_000
    finally:
        await stop(miners, daemon)
        await node.stop()
