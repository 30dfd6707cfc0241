"""Transcriptions of the authors' released forward passes, for the reference tests of the #30 models.

Each class follows its source module by module and line by line (``einops.rearrange`` written as the
equivalent ``permute``/``reshape``; layer names kept), with the authors' layouts: A2S2K-ResNet reads
``(N, 1, p, p, bands)``, SpectralFormer the grouped tokens ``(N, bands, band_patch * p * p)``.

- ``HuEtAl``, ``HamidaEtAl``: nshaud/DeepHyperX, models.py
- ``S3KAIResNet`` (with ``Residual``, ``eca_layer``): suvojit-0x55aa/A2S2K-ResNet, A2S2KResNet/A2S2KResNet.py
- ``SSFTTnet``: zgr6010/HSI_SSFTT, cls_SSFTT_IP/SSFTTnet.py
- ``ViT`` (mode 'CAF' is SpectralFormer) and ``gain_neighborhood_band``: danfenghong/IEEE_TGRS_SpectralFormer,
  vit_pytorch.py and demo.py
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class HuEtAl(nn.Module):
    def __init__(self, input_channels, n_classes):
        super().__init__()
        kernel_size = math.ceil(input_channels / 9)
        pool_size = math.ceil(kernel_size / 5)
        self.input_channels = input_channels
        self.conv = nn.Conv1d(1, 20, kernel_size)
        self.pool = nn.MaxPool1d(pool_size)
        with torch.no_grad():
            self.features_size = self.pool(self.conv(torch.zeros(1, 1, input_channels))).numel()
        self.fc1 = nn.Linear(self.features_size, 100)
        self.fc2 = nn.Linear(100, n_classes)

    def forward(self, x):
        x = x.squeeze(dim=-1).squeeze(dim=-1)
        x = x.unsqueeze(1)
        x = self.conv(x)
        x = torch.tanh(self.pool(x))
        x = x.view(-1, self.features_size)
        x = torch.tanh(self.fc1(x))
        return self.fc2(x)


class HamidaEtAl(nn.Module):
    def __init__(self, input_channels, n_classes, patch_size=5):
        super().__init__()
        self.patch_size, self.input_channels = patch_size, input_channels
        self.conv1 = nn.Conv3d(1, 20, (3, 3, 3), stride=(1, 1, 1), padding=1 if patch_size == 3 else 0)
        self.pool1 = nn.Conv3d(20, 20, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.conv2 = nn.Conv3d(20, 35, (3, 3, 3), stride=(1, 1, 1), padding=(1, 0, 0))
        self.pool2 = nn.Conv3d(35, 35, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.conv3 = nn.Conv3d(35, 35, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0))
        self.conv4 = nn.Conv3d(35, 35, (2, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        with torch.no_grad():
            x = torch.zeros((1, 1, input_channels, patch_size, patch_size))
            x = self.conv4(self.conv3(self.pool2(self.conv2(self.pool1(self.conv1(x))))))
            _, t, c, w, h = x.size()
        self.features_size = t * c * w * h
        self.fc = nn.Linear(self.features_size, n_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool1(x)
        x = F.relu(self.conv2(x))
        x = self.pool2(x)
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = x.view(-1, self.features_size)
        return self.fc(x)


class eca_layer(nn.Module):
    def __init__(self, channel, k_size=3):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.conv = nn.Conv2d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -3)).transpose(-1, -3).unsqueeze(-1)
        y = self.sigmoid(y)
        return x * y.expand_as(x)


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, padding, use_1x1conv=False, stride=1,
                 start_block=False, end_block=False):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel_size=kernel_size, padding=padding,
                                             stride=stride), nn.ReLU())
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel_size=kernel_size, padding=padding, stride=stride)
        self.conv3 = nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        if not start_block:
            self.bn0 = nn.BatchNorm3d(in_channels)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.ecalayer = eca_layer(out_channels)
        self.start_block, self.end_block = start_block, end_block

    def forward(self, X):
        identity = X
        if self.start_block:
            out = self.conv1(X)
        else:
            out = self.bn0(X)
            out = F.relu(out)
            out = self.conv1(out)
        out = self.bn1(out)
        out = F.relu(out)
        out = self.conv2(out)
        if self.start_block:
            out = self.bn2(out)
        out = self.ecalayer(out)
        out += identity
        if self.end_block:
            out = self.bn2(out)
            out = F.relu(out)
        return out


class S3KAIResNet(nn.Module):
    def __init__(self, band, classes, reduction, kernel=24):
        super().__init__()
        self.conv1x1 = nn.Conv3d(1, kernel, kernel_size=(1, 1, 7), stride=(1, 1, 2), padding=0)
        self.conv3x3 = nn.Conv3d(1, kernel, kernel_size=(3, 3, 7), stride=(1, 1, 2), padding=(1, 1, 0))
        self.batch_norm1x1 = nn.Sequential(nn.BatchNorm3d(kernel, eps=0.001, momentum=0.1, affine=True),
                                           nn.ReLU(inplace=True))
        self.batch_norm3x3 = nn.Sequential(nn.BatchNorm3d(kernel, eps=0.001, momentum=0.1, affine=True),
                                           nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.conv_se = nn.Sequential(nn.Conv3d(kernel, band // reduction, 1, padding=0, bias=True),
                                     nn.ReLU(inplace=True))
        self.conv_ex = nn.Conv3d(band // reduction, kernel, 1, padding=0, bias=True)
        self.softmax = nn.Softmax(dim=1)
        self.res_net1 = Residual(kernel, kernel, (1, 1, 7), (0, 0, 3), start_block=True)
        self.res_net2 = Residual(kernel, kernel, (1, 1, 7), (0, 0, 3))
        self.res_net3 = Residual(kernel, kernel, (3, 3, 1), (1, 1, 0))
        self.res_net4 = Residual(kernel, kernel, (3, 3, 1), (1, 1, 0), end_block=True)
        kernel_3d = math.ceil((band - 6) / 2)
        self.conv2 = nn.Conv3d(kernel, 128, padding=(0, 0, 0), kernel_size=(1, 1, kernel_3d), stride=(1, 1, 1))
        self.batch_norm2 = nn.Sequential(nn.BatchNorm3d(128, eps=0.001, momentum=0.1, affine=True),
                                         nn.ReLU(inplace=True))
        self.conv3 = nn.Conv3d(1, kernel, padding=(0, 0, 0), kernel_size=(3, 3, 128), stride=(1, 1, 1))
        self.batch_norm3 = nn.Sequential(nn.BatchNorm3d(kernel, eps=0.001, momentum=0.1, affine=True),
                                         nn.ReLU(inplace=True))
        self.avg_pooling = nn.AvgPool3d(kernel_size=(5, 5, 1))
        self.full_connection = nn.Sequential(nn.Linear(kernel, classes))

    def forward(self, X):
        x_1x1 = self.conv1x1(X)
        x_1x1 = self.batch_norm1x1(x_1x1).unsqueeze(dim=1)
        x_3x3 = self.conv3x3(X)
        x_3x3 = self.batch_norm3x3(x_3x3).unsqueeze(dim=1)
        x1 = torch.cat([x_3x3, x_1x1], dim=1)
        U = torch.sum(x1, dim=1)
        S = self.pool(U)
        Z = self.conv_se(S)
        attention_vector = torch.cat([self.conv_ex(Z).unsqueeze(dim=1), self.conv_ex(Z).unsqueeze(dim=1)], dim=1)
        attention_vector = self.softmax(attention_vector)
        V = (x1 * attention_vector).sum(dim=1)
        x2 = self.res_net1(V)
        x2 = self.res_net2(x2)
        x2 = self.batch_norm2(self.conv2(x2))
        x2 = x2.permute(0, 4, 2, 3, 1)
        x2 = self.batch_norm3(self.conv3(x2))
        x3 = self.res_net3(x2)
        x3 = self.res_net4(x3)
        x4 = self.avg_pooling(x3)
        x4 = x4.view(x4.size(0), -1)
        return self.full_connection(x4)


class SSFTTResidual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(x, **kwargs) + x


class LayerNormalize(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class MLP_Block(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class SSFTTAttention(nn.Module):
    def __init__(self, dim, heads=8, dropout=0.1):
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3, bias=True)
        self.nn1 = nn.Linear(dim, dim)
        self.do1 = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        b, n, _, h = *x.shape, self.heads
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, h, -1).permute(0, 2, 1, 3) for t in qkv)     # 'b n (h d) -> b h n d'
        dots = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
        attn = dots.softmax(dim=-1)
        out = torch.einsum('bhij,bhjd->bhid', attn, v)
        out = out.permute(0, 2, 1, 3).reshape(b, n, -1)                         # 'b h n d -> b n (h d)'
        return self.do1(self.nn1(out))


class SSFTTTransformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim, dropout):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                SSFTTResidual(LayerNormalize(dim, SSFTTAttention(dim, heads=heads, dropout=dropout))),
                SSFTTResidual(LayerNormalize(dim, MLP_Block(dim, mlp_dim, dropout=dropout)))]))

    def forward(self, x, mask=None):
        for attention, mlp in self.layers:
            x = attention(x, mask=mask)
            x = mlp(x)
        return x


class SSFTTnet(nn.Module):
    def __init__(self, in_channels=1, num_classes=16, num_tokens=4, dim=64, depth=1, heads=8, mlp_dim=8,
                 dropout=0.1, emb_dropout=0.1, bands=30):
        super().__init__()
        self.L, self.cT = num_tokens, dim
        self.conv3d_features = nn.Sequential(nn.Conv3d(in_channels, out_channels=8, kernel_size=(3, 3, 3)),
                                             nn.BatchNorm3d(8), nn.ReLU())
        self.conv2d_features = nn.Sequential(nn.Conv2d(in_channels=8 * (bands - 2), out_channels=64,
                                                       kernel_size=(3, 3)), nn.BatchNorm2d(64), nn.ReLU())
        self.token_wA = nn.Parameter(torch.empty(1, self.L, 64), requires_grad=True)
        torch.nn.init.xavier_normal_(self.token_wA)
        self.token_wV = nn.Parameter(torch.empty(1, 64, self.cT), requires_grad=True)
        torch.nn.init.xavier_normal_(self.token_wV)
        self.pos_embedding = nn.Parameter(torch.empty(1, (num_tokens + 1), dim))
        torch.nn.init.normal_(self.pos_embedding, std=.02)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = SSFTTTransformer(dim, depth, heads, mlp_dim, dropout)
        self.to_cls_token = nn.Identity()
        self.nn1 = nn.Linear(dim, num_classes)

    def forward(self, x, mask=None):
        x = self.conv3d_features(x)
        x = x.flatten(1, 2)                                                   # 'b c h w y -> b (c h) w y'
        x = self.conv2d_features(x)
        x = x.flatten(2).transpose(1, 2)                                      # 'b c h w -> b (h w) c'
        wa = self.token_wA.transpose(1, 2)                                    # 'b h w -> b w h'
        A = torch.einsum('bij,bjk->bik', x, wa)
        A = A.transpose(1, 2)
        A = A.softmax(dim=-1)
        VV = torch.einsum('bij,bjk->bik', x, self.token_wV)
        T = torch.einsum('bij,bjk->bik', A, VV)
        cls_tokens = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, T), dim=1)
        x += self.pos_embedding
        x = self.dropout(x)
        x = self.transformer(x, mask)
        x = self.to_cls_token(x[:, 0])
        return self.nn1(x)


class SFResidual(SSFTTResidual):
    pass


class PreNorm(LayerNormalize):
    pass


class FeedForward(MLP_Block):
    pass


class SFAttention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout):
        super().__init__()
        inner_dim = dim_head * heads
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout))

    def forward(self, x, mask=None):
        b, n, _, h = *x.shape, self.heads
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, h, -1).permute(0, 2, 1, 3) for t in qkv)
        dots = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
        attn = dots.softmax(dim=-1)
        out = torch.einsum('bhij,bhjd->bhid', attn, v)
        out = out.permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)


class SFTransformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_head, dropout, num_channel, mode):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                SFResidual(PreNorm(dim, SFAttention(dim, heads=heads, dim_head=dim_head, dropout=dropout))),
                SFResidual(PreNorm(dim, FeedForward(dim, mlp_head, dropout=dropout)))]))
        self.mode = mode
        self.skipcat = nn.ModuleList([])
        for _ in range(depth - 2):
            self.skipcat.append(nn.Conv2d(num_channel + 1, num_channel + 1, [1, 2], 1, 0))

    def forward(self, x, mask=None):
        if self.mode == 'ViT':
            for attn, ff in self.layers:
                x = attn(x, mask=mask)
                x = ff(x)
        elif self.mode == 'CAF':
            last_output = []
            nl = 0
            for attn, ff in self.layers:
                last_output.append(x)
                if nl > 1:
                    x = self.skipcat[nl - 2](torch.cat([x.unsqueeze(3), last_output[nl - 2].unsqueeze(3)],
                                                       dim=3)).squeeze(3)
                x = attn(x, mask=mask)
                x = ff(x)
                nl += 1
        return x


class ViT(nn.Module):
    def __init__(self, image_size, near_band, num_patches, num_classes, dim, depth, heads, mlp_dim, pool='cls',
                 channels=1, dim_head=16, dropout=0., emb_dropout=0., mode='ViT'):
        super().__init__()
        patch_dim = image_size ** 2 * near_band
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.patch_to_embedding = nn.Linear(patch_dim, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = SFTransformer(dim, depth, heads, dim_head, mlp_dim, dropout, num_patches, mode)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, x, mask=None):
        x = self.patch_to_embedding(x)
        b, n, _ = x.shape
        cls_tokens = self.cls_token.expand(b, -1, -1)                          # repeat '() n d -> b n d'
        x = torch.cat((cls_tokens, x), dim=1)
        x += self.pos_embedding[:, :(n + 1)]
        x = self.dropout(x)
        x = self.transformer(x, mask)
        x = self.to_latent(x[:, 0])
        return self.mlp_head(x)


def gain_neighborhood_band(x_train, band, band_patch, patch=5):
    """demo.py's grouping: windows ``(N, patch, patch, band)`` to ``(N, patch*patch*band_patch, band)``."""
    nn_ = band_patch // 2
    pp = (patch * patch) // 2
    x_train_reshape = x_train.reshape(x_train.shape[0], patch * patch, band)
    x_train_band = np.zeros((x_train.shape[0], patch * patch * band_patch, band), dtype=float)
    x_train_band[:, nn_ * patch * patch:(nn_ + 1) * patch * patch, :] = x_train_reshape
    for i in range(nn_):
        if pp > 0:
            x_train_band[:, i * patch * patch:(i + 1) * patch * patch, :i + 1] = x_train_reshape[:, :, band - i - 1:]
            x_train_band[:, i * patch * patch:(i + 1) * patch * patch, i + 1:] = x_train_reshape[:, :, :band - i - 1]
        else:
            x_train_band[:, i:(i + 1), :(nn_ - i)] = x_train_reshape[:, 0:1, (band - nn_ + i):]
            x_train_band[:, i:(i + 1), (nn_ - i):] = x_train_reshape[:, 0:1, :(band - nn_ + i)]
    for i in range(nn_):
        if pp > 0:
            x_train_band[:, (nn_ + i + 1) * patch * patch:(nn_ + i + 2) * patch * patch, :band - i - 1] = \
                x_train_reshape[:, :, i + 1:]
            x_train_band[:, (nn_ + i + 1) * patch * patch:(nn_ + i + 2) * patch * patch, band - i - 1:] = \
                x_train_reshape[:, :, :i + 1]
        else:
            x_train_band[:, (nn_ + 1 + i):(nn_ + 2 + i), (band - i - 1):] = x_train_reshape[:, 0:1, :(i + 1)]
            x_train_band[:, (nn_ + 1 + i):(nn_ + 2 + i), :(band - i - 1)] = x_train_reshape[:, 0:1, (i + 1):]
    return x_train_band
