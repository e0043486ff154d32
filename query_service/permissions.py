"""Per-document READ permissions, kept in SQL (`users`, `documents`, `user_permissions`).

Users are known by their token's `preferred_username`, which is what an administrator grants
to. Search asks for the set of readable ids once per request and passes it to the store, so
filtering happens inside the store query and pages stay full and totals right.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Engine, ForeignKey, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, delete, select


class Permission(StrEnum):
    READ = "READ"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=255, unique=True, index=True)


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The tweet id, which is also the search document id."""


class UserPermission(SQLModel, table=True):
    __tablename__ = "user_permissions"
    __table_args__ = (UniqueConstraint("user_id", "document_id", "permission_type"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    document_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("documents.id"), nullable=False, index=True)
    )
    permission_type: Permission = Field(default=Permission.READ, max_length=32)


TABLES = ("users", "documents", "user_permissions")


class PermissionRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_schema(self) -> None:
        """Create the tables if missing (idempotent; the schema has not changed yet)."""
        tables = [SQLModel.metadata.tables[name] for name in TABLES]
        SQLModel.metadata.create_all(self._engine, tables=tables)

    def readable_ids(self, username: str) -> frozenset[int]:
        statement = (
            select(UserPermission.document_id)
            .join(User, User.id == UserPermission.user_id)  # type: ignore[arg-type]
            .where(User.username == username)
            .where(UserPermission.permission_type == Permission.READ)
        )
        with Session(self._engine) as session:
            return frozenset(session.exec(statement).all())

    def can_read(self, username: str, document_id: int) -> bool:
        statement = (
            select(UserPermission.id)
            .join(User, User.id == UserPermission.user_id)  # type: ignore[arg-type]
            .where(User.username == username)
            .where(UserPermission.document_id == document_id)
            .where(UserPermission.permission_type == Permission.READ)
        )
        with Session(self._engine) as session:
            return session.exec(statement).first() is not None

    def grant(self, username: str, document_id: int) -> bool:
        """Give `username` READ on the document; False when it already had it."""
        with Session(self._engine) as session:
            user = session.exec(select(User).where(User.username == username)).first()
            if user is None:
                user = User(username=username)
                session.add(user)
            if session.get(Document, document_id) is None:
                session.add(Document(id=document_id))
            session.flush()
            assert user.id is not None
            existing = session.exec(
                select(UserPermission)
                .where(UserPermission.user_id == user.id)
                .where(UserPermission.document_id == document_id)
                .where(UserPermission.permission_type == Permission.READ)
            ).first()
            if existing is not None:
                return False
            session.add(UserPermission(user_id=user.id, document_id=document_id))
            session.commit()
            return True

    def revoke(self, username: str, document_id: int) -> bool:
        """Take READ away; False when there was nothing to take."""
        with Session(self._engine) as session:
            user = session.exec(select(User).where(User.username == username)).first()
            if user is None:
                return False
            result = session.exec(
                delete(UserPermission)
                .where(UserPermission.user_id == user.id)  # type: ignore[arg-type]
                .where(UserPermission.document_id == document_id)  # type: ignore[arg-type]
            )
            session.commit()
            return bool(result.rowcount)
