"""Accounts and what an organization is issued: its users, and its pre-printed label stock."""

from pathlib import Path
from typing import Annotated

import typer

from schemas.auth import UserCreate
from schemas.batches import LabelIssue
from wastetrack.auth.models import Role
from wastetrack.cli.running import contract, run_and_print, writable, write_file
from wastetrack.core.errors import DomainError
from wastetrack.core.settings import get_settings

user_app = typer.Typer(help="Users.", no_args_is_help=True)
labels_app = typer.Typer(help="Pre-printed QR label stock.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    organization_id: Annotated[int, typer.Option("--org")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    full_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a user bound to an organization."""
    from wastetrack.auth import service as auth

    body = contract(
        UserCreate,
        username=username,
        password=password,
        role=role,
        organization_id=organization_id,
        full_name=full_name,
    )

    async def work() -> dict[str, object]:
        user = await auth.create_user(
            username=body.username,
            password=body.password,
            role=body.role,
            organization_id=body.organization_id,
            full_name=body.full_name,
        )
        return {"id": user.id, "username": user.username, "role": user.role.value}

    run_and_print(work)


@user_app.command("deactivate")
def user_deactivate(username: Annotated[str, typer.Option()]) -> None:
    """Stop a user from logging in; their refresh tokens are revoked at once."""
    from wastetrack.auth import service as auth

    async def work() -> dict[str, object]:
        user = await auth.find_account(username)
        if user is None:
            raise DomainError("no such user", field="username")
        user = await auth.deactivate_user(user_id=user.id)
        return {"id": user.id, "username": user.username, "is_active": user.is_active}

    run_and_print(work)


@labels_app.command("issue")
def labels_issue(
    organization_id: Annotated[int, typer.Option("--org")],
    stream: Annotated[str, typer.Option()],
    count: Annotated[int, typer.Option()],
    out: Annotated[Path, typer.Option(help="PDF file to write")],
    manager: Annotated[
        str | None, typer.Option(help="issue as this manager (default: first active admin)")
    ] = None,
) -> None:
    """Issue N unbound label codes for an organization and write them as an A4 PDF sheet."""
    from wastetrack.auth import service as auth
    from wastetrack.auth.models import User
    from wastetrack.batches import service as batches

    settings = get_settings()
    asked = contract(LabelIssue, organization_id=organization_id, stream=stream, count=count)
    writable(out)

    async def work() -> dict[str, object]:
        # Label stock and its PIN list record who issued them: never someone deactivated.
        if manager:
            user = await auth.find_account(manager, active=True)
        else:
            user = await User.filter(role=Role.admin, is_active=True).order_by("id").first()
        if user is None:
            raise DomainError(
                "no such active manager; create an admin or pass --manager", field="manager"
            )
        principal = await auth.principal_for(user)
        issued, pdf = await batches.issue_label_sheet(
            principal=principal,
            **asked.model_dump(),
            base_url=settings.base_url,
            secret=settings.secret_key,
        )
        write_file(out, pdf)  # a path that cannot take it: nothing issued (rolled back)
        return {"issued": len(issued), "first": issued[0].code, "pdf": str(out)}

    run_and_print(work)
