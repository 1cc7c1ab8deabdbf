"""The stock control panel: its model (direct and through the HTTP service)
and its view, driven by button.click() and checked against Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from waiting import wait_for

from helpers import api, stock
from helpers.widgets.stock import NAIVE, StockPanel, StockPanelModel


@pytest.fixture
def panel(r: redis.Redis) -> Iterator[StockPanel]:
    stock.reset_stock(r)
    view = StockPanel(StockPanelModel(r), refresh_interval=None)
    yield view
    view.close()


def shown(panel: StockPanel) -> dict[int, str]:
    return {item_id: label.value for item_id, label in panel.left_labels.items()}


def test_button_descriptions_are_stable(panel: StockPanel) -> None:
    assert [b.description for b in panel.reserve_buttons.values()] == [
        "Reserve Suitcase 250",
        "Reserve Suitcase 450",
        "Reserve Suitcase 650",
        "Reserve Suitcase 1050",
    ]
    assert panel.reset_button.description == "Reset stock"
    assert panel.rush_button.description == "Rush"
    assert panel.refresh_button.description == "Refresh"
    for item_id in (1, 2, 3, 4):
        assert f"stock-left-{item_id}" in panel.left_labels[item_id]._dom_classes
        assert f"stock-bar-{item_id}" in panel.bars[item_id]._dom_classes
    assert "stock-rush-result" in panel.rush_result._dom_classes


def test_shows_each_product_with_its_quantity(panel: StockPanel) -> None:
    assert shown(panel) == {1: "4 / 4 left", 2: "10 / 10 left", 3: "2 / 2 left", 4: "5 / 5 left"}
    assert [panel.bars[i].value for i in (1, 2, 3, 4)] == [4, 10, 2, 5]
    assert [panel.bars[i].max for i in (1, 2, 3, 4)] == [4, 10, 2, 5]


def test_reserve_buttons_reserve_in_redis_and_show_it(panel: StockPanel, r: redis.Redis) -> None:
    button = panel.reserve_buttons[3]
    button.click()
    assert r.get("item.3") == "1"
    assert panel.left_labels[3].value == "1 / 2 left" and panel.bars[3].value == 1
    assert panel.status.value == "Suitcase 650: Reservation confirmed (1 left)"
    button.click()
    button.click()
    assert r.get("item.3") == "0"
    assert panel.left_labels[3].value == "0 / 2 left"
    assert panel.status.value == "Suitcase 650: Not enough stock available (0 left)"
    assert panel.bars[3].bar_style == "danger"
    assert r.get("item.1") == "4"


def test_reset_button(panel: StockPanel, r: redis.Redis) -> None:
    r.mset({"item.1": 0, "item.4": 1})
    panel.refresh_button.click()
    assert shown(panel)[1] == "0 / 4 left" and shown(panel)[4] == "1 / 5 left"
    panel.reset_button.click()
    assert r.mget(stock.stock_keys()) == ["4", "10", "2", "5"]
    assert shown(panel)[1] == "4 / 4 left"
    assert panel.status.value == "Stock reset to the initial quantities"


def test_rush_button_atomic_confirms_exactly_what_was_available(
    panel: StockPanel, r: redis.Redis
) -> None:
    panel.rush_product.value = 2
    panel.rush_requests.value = 300
    panel.rush_button.click()
    result = panel.last_rush
    assert result is not None and not result.naive
    assert (result.requests, result.confirmed, result.available, result.left) == (300, 10, 10, 0)
    assert result.oversold == 0
    assert "<b>10</b> confirmed vs <b>10</b> available (0 oversold)" in panel.rush_result.value
    assert r.get("item.2") == "0" and shown(panel)[2] == "0 / 10 left"


def test_rush_button_naive_oversells(panel: StockPanel, r: redis.Redis) -> None:
    panel.rush_product.value = 1
    panel.rush_mode.value = NAIVE
    panel.reset_button.click()
    panel.rush_button.click()
    result = panel.last_rush
    assert result is not None and result.naive and result.available == 4
    assert result.confirmed > 4 and result.oversold == result.confirmed - 4
    assert f"<b>{result.confirmed}</b> confirmed vs <b>4</b> available" in panel.rush_result.value


def test_errors_go_to_the_status_line(panel: StockPanel, r: redis.Redis) -> None:
    r.set("item.4", "lots")
    panel.reserve_buttons[4].click()  # the script refuses a stock that is not a number
    assert panel.status.value.startswith("Reserve Suitcase 1050: ResponseError")


def test_auto_refresh_shows_changes_made_elsewhere(r: redis.Redis) -> None:
    stock.reset_stock(r)
    view = StockPanel(StockPanelModel(r), refresh_interval=0.05)
    try:
        assert view.auto_refreshing
        r.set("item.2", 6)
        wait_for(lambda: view.left_labels[2].value == "6 / 10 left")
    finally:
        view.close()
    assert not view.auto_refreshing


def test_model_through_the_http_service(r: redis.Redis) -> None:
    with api.start_service() as service:
        model = StockPanelModel(r, service_url=service.url)
        assert model.reserve(1) is True
        assert model.quantities()[1] == 3
        result = model.rush(4, 300)
        assert (result.confirmed, result.available, result.left) == (5, 5, 0)
        model.reset()
        naive = model.rush(1, 300, naive=True)
        assert naive.available == 4 and naive.confirmed > 4
    with pytest.raises(stock.ProductNotFound):
        model.rush(9)
