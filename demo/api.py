"""The demo HTTP API under ``/demo/api``: what the examples' ``api`` nodes call.

Every answer is read from the demo business database (``demo.business_db``) at request
time — an order a workflow marked through SQL shows its new status here. Lists are JSON
arrays (the data pipeline filters ``$[?(@.amount >= 100)]`` on the answer itself);
single objects answer 404 in the usual error shape when the id does not exist.

The routes are **public** (``permission("public")``): the examples' ``api`` nodes call
them like any outside API, without Flowyard credentials, and the controller exists only
in demo mode (never on a production server). They serve the demo's made-up customers
and orders, nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from demo.standins import DemoStandins
from server.errors import NotFound
from server.security.permissions import permission

CustomerId = Annotated[int, PathParameter(description="Customer id")]
OrderId = Annotated[int, PathParameter(description="Order id")]


class DemoApiController(Controller):
    path = "/demo/api"
    tags = ["demo"]

    @get("/customers", summary="Demo customers", opt=permission("public"))
    async def customers(
        self,
        demo: NamedDependency[DemoStandins],
        country: Annotated[str | None, QueryParameter(max_length=8, description="e.g. GB")] = None,
    ) -> list[dict[str, Any]]:
        return await demo.business.customers(country=country)

    @get("/customers/{customer_id:int}", summary="One demo customer", opt=permission("public"))
    async def customer(
        self, demo: NamedDependency[DemoStandins], customer_id: CustomerId
    ) -> dict[str, Any]:
        found = await demo.business.customer(customer_id)
        if found is None:
            raise NotFound(f"no demo customer with id {customer_id}")
        return found

    @get(
        "/customers/{customer_id:int}/orders",
        summary="A demo customer's orders",
        opt=permission("public"),
    )
    async def customer_orders(
        self, demo: NamedDependency[DemoStandins], customer_id: CustomerId
    ) -> list[dict[str, Any]]:
        if await demo.business.customer(customer_id) is None:
            raise NotFound(f"no demo customer with id {customer_id}")
        return await demo.business.orders(customer_id=customer_id)

    @get("/orders", summary="Demo orders", opt=permission("public"))
    async def orders(
        self,
        demo: NamedDependency[DemoStandins],
        status: Annotated[str | None, QueryParameter(max_length=32)] = None,
        customer_id: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        min_amount: Annotated[float | None, QueryParameter(ge=0, le=1e12)] = None,
    ) -> list[dict[str, Any]]:
        return await demo.business.orders(
            status=status, customer_id=customer_id, min_amount=min_amount
        )

    @get("/orders/{order_id:int}", summary="One demo order", opt=permission("public"))
    async def order(self, demo: NamedDependency[DemoStandins], order_id: OrderId) -> dict[str, Any]:
        found = await demo.business.order(order_id)
        if found is None:
            raise NotFound(f"no demo order with id {order_id}")
        return found
