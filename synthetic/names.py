"""Realistic Vietnamese names (diacritics kept), drawn deterministically."""
import random

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lâm", "Mai"]
FAMILY_WEIGHTS = [38, 11, 9, 7, 5, 5, 4, 4, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Kim", "Mỹ", "Bích", "Hồng", "Phương", "Thị Thu"]
MIDDLE_M = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Hoàng", "Xuân", "Tiến"]
GIVEN_F = ["Hà", "Lan", "Hương", "Mai", "Linh", "Trang", "Thảo", "Ngọc", "Hằng", "Yến", "Nhung", "Duyên", "Oanh",
           "Phượng", "Thúy", "Vân", "Hạnh", "Loan", "Nga", "Quỳnh", "Tuyết", "Hoa", "Liên", "Dung"]
GIVEN_M = ["An", "Bình", "Cường", "Dũng", "Đức", "Hải", "Hùng", "Khoa", "Long", "Minh", "Nam", "Phong", "Quân",
           "Sơn", "Tâm", "Thắng", "Trung", "Tuấn", "Việt", "Vinh", "Hiếu", "Khánh", "Lộc", "Phúc"]


def person(rng: random.Random, female_share: float = 0.579) -> tuple[str, str]:
    """(full name, gender); 57.9% women as in Hồ Chí Minh City's union membership."""
    female = rng.random() < female_share
    family = rng.choices(FAMILY, FAMILY_WEIGHTS)[0]
    middle = rng.choice(MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    return f"{family} {middle} {given}", "female" if female else "male"
